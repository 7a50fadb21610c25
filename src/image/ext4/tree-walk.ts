import { CancelledError, KilnError } from "../../errors.js";
import type { BlockOwnership } from "./block-ownership.js";
import { inFilesystem, type BlockMapping, type PhysicalRun } from "./data-runs.js";
import type { DirectoryEntry } from "./directory.js";
import { readDirectory } from "./directory-reader.js";
import type { Ext4File } from "./ext4-filesystem.js";
import { readRuns } from "./file-content.js";
import { inlineContent } from "./inline-data.js";
import { mapInodeBlocks } from "./inode-blocks.js";
import { blockArea, fileTypes, hasInlineData, isFastSymlink, isType, mayHaveBlocks, rootInode, treeEntry, type Inode } from "./inode.js";
import { claimHiddenInodes } from "./special-inodes.js";
import { readXattrs } from "./xattrs.js";
import { inodeInUse, type Ext4Volume } from "./volume.js";

/** Longest symlink target Linux accepts (PATH_MAX). */
const maxLinkTarget = 4096;

interface Frame {
  path: string;
  entries: DirectoryEntry[];
  next: number;
}

/**
 * Every live entry, the root "/" first, then depth first in name order (as the directory and tar
 * sources give them). A regular file's second and later hard links come as "other" with the first
 * path as linkTarget, so its content is read once. Block owners are recorded on the way, and in
 * `formerNames` the paths that deleted entries in live directories still give to free inodes.
 */
export async function* walkTree(volume: Ext4Volume, ownership: BlockOwnership, formerNames: Map<number, string>, signal?: AbortSignal): AsyncGenerator<Ext4File> {
  if (signal?.aborted) throw new CancelledError();
  await claimHiddenInodes(volume, ownership);
  const root = await volume.inodes.inode(rootInode, "the root directory");
  if (root === undefined || !isType(root, fileTypes.directory)) {
    throw new KilnError("KILN_AUDIT_EXT_CORRUPT", `${volume.reader.name}: the ext filesystem's root directory (inode 2) is not a directory`, {
      hint: "run `e2fsck -n` on the image to see what is wrong with it",
    });
  }
  const rootFile = await describeFile(volume, ownership, root, "/");
  yield rootFile;
  const visited = new Uint8Array(Math.ceil((volume.sb.inodesCount + 1) / 8));
  visited[rootInode >>> 3]! |= 1 << (rootInode & 7);
  const stack: Frame[] = [{ path: "", entries: await entriesOf(volume, root, rootFile.extents, "", formerNames), next: 0 }];
  let count = 0;
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const entry = frame.entries[frame.next++];
    if (entry === undefined) {
      stack.pop();
      continue;
    }
    if ((++count & 255) === 0 && signal?.aborted) throw new CancelledError();
    const path = `${frame.path}/${entry.name}`;
    const inode = await volume.inodes.inode(entry.inode, path);
    if (inode === undefined) continue;
    if (inode.mode === 0) {
      volume.problems.note(`${path}: names inode ${inode.number}, which is free`);
      continue;
    }
    const file = await describeFile(volume, ownership, inode, path);
    yield file;
    if (file.entry.type !== "directory") continue;
    const bit = 1 << (inode.number & 7);
    if ((visited[inode.number >>> 3]! & bit) !== 0) {
      volume.problems.note(`${path}: directory inode ${inode.number} was already walked (a directory loop), not entered again`);
      continue;
    }
    visited[inode.number >>> 3]! |= bit;
    stack.push({ path, entries: await entriesOf(volume, inode, file.extents, path, formerNames), next: 0 });
  }
}

async function entriesOf(volume: Ext4Volume, inode: Inode, runs: readonly PhysicalRun[], path: string, formerNames: Map<number, string>): Promise<DirectoryEntry[]> {
  const deleted: DirectoryEntry[] = [];
  const live = await readDirectory(volume, inode, runs, path === "" ? "/" : path, deleted);
  for (const { inode: number, name } of deleted) {
    if (!formerNames.has(number) && !inodeInUse(volume, number)) formerNames.set(number, `${path}/${name}`);
  }
  return live.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function describeFile(volume: Ext4Volume, ownership: BlockOwnership, inode: Inode, path: string): Promise<Ext4File> {
  const mapping: BlockMapping = mayHaveBlocks(inode, volume.sb.blockSize)
    ? await mapInodeBlocks(inode, volume.mapping)
    : { runs: [], mapBlocks: [] };
  const first = ownership.pathOf(inode.number);
  const xattrBlock = checkedXattrBlock(volume, inode, path);
  ownership.file(inode.number, path, mapping, xattrBlock);
  const file: Ext4File = { inode: inode.number, entry: treeEntry(inode, path), extents: mapping.runs, inline: hasInlineData(inode) };
  if (isType(inode, fileTypes.symlink)) file.entry.linkTarget = await symlinkTarget(volume, inode, mapping.runs, path);
  const xattrs = await readXattrs(inode, xattrBlock, volume.reader, volume.problems);
  if (xattrs.length > 0) file.entry.xattrs = xattrs;
  if (first !== undefined && file.entry.type === "file") {
    file.entry.type = "other";
    file.entry.size = 0;
    file.entry.linkTarget = first;
  }
  return file;
}

function checkedXattrBlock(volume: Ext4Volume, inode: Inode, path: string): number {
  const block = inode.xattrBlock;
  return block !== 0 && inFilesystem(volume.mapping, block, 1, `${path}: xattr block`) ? block : 0;
}

async function symlinkTarget(volume: Ext4Volume, inode: Inode, runs: readonly PhysicalRun[], path: string): Promise<string> {
  if (inode.size > maxLinkTarget) volume.problems.note(`${path}: symlink target of ${inode.size} bytes, read up to ${maxLinkTarget}`);
  const size = Math.min(inode.size, maxLinkTarget);
  if (isFastSymlink(inode, volume.sb.blockSize)) return blockArea(inode).toString("utf8", 0, size);
  if (hasInlineData(inode)) return inlineContent(inode, volume.problems).toString("utf8", 0, size);
  const chunks: Buffer[] = [];
  for await (const chunk of readRuns(volume.reader, runs, size)) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}
