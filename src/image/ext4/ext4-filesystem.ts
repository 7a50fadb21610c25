import type { FileHandle } from "node:fs/promises";
import type { TreeEntry } from "../../audit/sources/image-tree.js";
import { GroupBitmaps } from "./bitmaps.js";
import { BlockOwnership } from "./block-ownership.js";
import { BlockOwnerRuns, type BlockOwnerIndex } from "./block-owners.js";
import type { PhysicalRun } from "./data-runs.js";
import { findDeletedInodes } from "./deleted-inodes.js";
import { readRuns } from "./file-content.js";
import { groupFlags, readGroupDescriptors } from "./group-descriptors.js";
import { ImageReader } from "./image-reader.js";
import { inlineContent } from "./inline-data.js";
import { InodeTables } from "./inode-table.js";
import { InodeTableIndex } from "./inode-table-index.js";
import { metadataRuns } from "./metadata-layout.js";
import { ignoreProblems, ProblemLog } from "./problem-log.js";
import { incompat, parseSuperblock, superblockOffset, superblockSize } from "./superblock.js";
import { walkTree } from "./tree-walk.js";
import { blockInUse, type Ext4Volume } from "./volume.js";

export type { PhysicalRun } from "./data-runs.js";

/** A live entry of the filesystem: its inode, what the tree shows of it, and where its data is. */
export interface Ext4File {
  inode: number;
  entry: TreeEntry;
  /** Data runs in file order (holes are gaps between them); empty for inline data and fast symlinks. */
  extents: PhysicalRun[];
  inline: boolean;
}

/** What a block of the filesystem is used for. */
export type BlockOwner =
  | { kind: "file"; inode: number; path: string }
  | { kind: "metadata"; what: string }
  | { kind: "journal" }
  | { kind: "free" }
  | { kind: "allocated-unowned" };

/** A deleted inode whose data may still be read from blocks nothing else owns now. */
export interface DeletedInode {
  inode: number;
  /** i_mode as stored: file type and permission bits. */
  mode: number;
  size: number;
  dtime: number;
  /** Only the blocks no live inode (nor metadata nor the journal) owns now. */
  runs: PhysicalRun[];
  /** The name it had, when a removed entry still gives it: in a live directory, or in a removed one whose own name is known. */
  formerPath?: string;
}

/** What only a finished walk knows. */
interface WalkResult {
  index: BlockOwnerIndex;
  owners: readonly BlockOwner[];
  ownership: BlockOwnership;
  formerNames: ReadonlyMap<number, string>;
}

const free: BlockOwner = { kind: "free" };
const allocatedUnowned: BlockOwner = { kind: "allocated-unowned" };

/** A read-only ext2/3/4 filesystem inside an image file, read with positional reads only. */
export class Ext4Filesystem {
  readonly blockSize: number;
  readonly blocksCount: number;
  readonly offset: number;
  readonly needsRecovery: boolean;
  readonly problems: string[];
  private walkResult: WalkResult | undefined;

  private constructor(private readonly volume: Ext4Volume, private readonly inodeTables: InodeTableIndex) {
    this.blockSize = volume.sb.blockSize;
    this.blocksCount = volume.sb.blocksCount;
    this.offset = volume.reader.offset;
    this.needsRecovery = (volume.sb.incompat & incompat.recover) !== 0;
    this.problems = volume.problems.problems;
  }

  /** `offset`: byte offset of the filesystem inside the file (a partition's start), `size`: bytes available from there. */
  static async open(handle: FileHandle, options: { offset: number; size: number; name: string }): Promise<Ext4Filesystem> {
    const reader = new ImageReader(handle, options.name, options.offset, options.size);
    const raw = options.size >= superblockOffset + superblockSize ? await reader.bytesAt(superblockOffset, superblockSize) : Buffer.alloc(0);
    const sb = parseSuperblock(raw, options.name, options.offset);
    reader.blockSize = sb.blockSize;
    reader.expectedBytes = sb.blocksCount * sb.blockSize;
    if (options.size < reader.expectedBytes) throw reader.truncated(reader.expectedBytes);
    const problems = new ProblemLog();
    const groups = await readGroupDescriptors(reader, sb, problems);
    const metadata = metadataRuns(sb, groups);
    const metadataOnly = new BlockOwnerRuns();
    for (const run of metadata) metadataOnly.add(run.start, run.count, 0);
    const blockBitmaps = await GroupBitmaps.read(reader, groups.map((g) => (g.flags & groupFlags.blockUninit) !== 0 ? -1 : g.blockBitmap), sb.blocksPerGroup);
    const inodeBitmaps = await GroupBitmaps.read(reader, groups.map((g) => (g.flags & groupFlags.inodeUninit) !== 0 ? -1 : g.inodeBitmap), sb.inodesPerGroup);
    const volume: Ext4Volume = {
      reader, sb, groups, problems, metadata, blockBitmaps, inodeBitmaps,
      inodes: new InodeTables(reader, sb, groups, problems),
      mapping: { reader, blocksCount: sb.blocksCount, firstDataBlock: sb.firstDataBlock, problems },
      // Overlapping metadata is reported once, by the full index a walk builds.
      metadataIndex: metadataOnly.index(ignoreProblems, () => "metadata"),
    };
    return new Ext4Filesystem(volume, new InodeTableIndex(sb, groups));
  }

  /**
   * Every live entry: "/" first, then depth first in name order; a file's later hard links are
   * "other" with the first path as linkTarget. Block owners are known once it has finished.
   */
  async *walk(signal?: AbortSignal): AsyncIterable<Ext4File> {
    const ownership = new BlockOwnership();
    const formerNames = new Map<number, string>();
    for (const run of this.volume.metadata) ownership.metadata(run.start, run.count, run.what);
    yield* walkTree(this.volume, ownership, formerNames, signal);
    this.walkResult = { ...ownership.build(this.volume.problems), ownership, formerNames };
  }

  /** A file's content in order, at most `limit` bytes: holes and uninitialized extents as zeros, chunks of at most 1 MiB. */
  async *read(file: Ext4File, limit = Number.POSITIVE_INFINITY, compactHoles = false): AsyncIterable<Buffer> {
    // No extent or block map reaches past 2^32 blocks: a larger i_size is corrupt, not a bigger hole.
    const size = Math.min(file.entry.size, limit, 2 ** 32 * this.blockSize);
    if (size <= 0) return;
    if (!file.inline) {
      yield* readRuns(this.volume.reader, file.extents, size, compactHoles);
      return;
    }
    const inode = await this.volume.inodes.inode(file.inode, file.entry.path);
    if (inode !== undefined) yield inlineContent(inode, this.volume.problems).subarray(0, size);
  }

  /** Whether the block bitmaps mark a block in use (a never-initialized group uses only its metadata). */
  blockInUse(block: number): boolean {
    this.checkBlock(block);
    return block < this.blocksCount && blockInUse(this.volume, block);
  }

  /**
   * What owns a block; valid after walk() has finished. Blocks past the filesystem's end (a
   * partition larger than its filesystem) are free: nothing of the filesystem is there.
   */
  ownerOf(block: number): BlockOwner {
    this.checkBlock(block);
    const { index, owners } = this.walked();
    if (block >= this.blocksCount) return free;
    const owner = owners[index.find(block)];
    if (owner !== undefined) return owner;
    return blockInUse(this.volume, block) ? allocatedUnowned : free;
  }

  /** Which inode's record holds a byte of an inode table (bytes counted from the filesystem's start). */
  inodeAtByte(byteInFilesystem: number): number | undefined {
    return this.inodeTables.inodeAt(byteInFilesystem);
  }

  /** The inode record holding a byte of an inode table: its number, start (bytes from the filesystem's start) and size. */
  inodeRecordAt(byteInFilesystem: number): { inode: number; start: number; size: number } | undefined {
    return this.inodeTables.recordAt(byteInFilesystem);
  }

  /** The first path a live inode was walked under; valid after walk() has finished. */
  pathOf(inode: number): string | undefined {
    return this.walked().ownership.pathOf(inode);
  }

  /** The name a removed entry in a live directory still gives a free inode; valid after walk() has finished. */
  formerPathOf(inode: number): string | undefined {
    return this.walked().formerNames.get(inode);
  }

  /** Free inodes whose data can still be read; valid after walk() has finished. */
  async deletedInodes(): Promise<DeletedInode[]> {
    const { index, formerNames } = this.walked();
    return findDeletedInodes(this.volume, index, formerNames);
  }

  private walked(): WalkResult {
    if (this.walkResult === undefined) throw new Error("Ext4Filesystem: block owners are known only after walk() has finished");
    return this.walkResult;
  }

  private checkBlock(block: number): void {
    if (!Number.isSafeInteger(block) || block < 0) throw new RangeError(`block ${block} is not a block number`);
  }
}
