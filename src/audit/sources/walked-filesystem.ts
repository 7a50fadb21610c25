import type { FileHandle } from "node:fs/promises";
import type { Ext4File, Ext4Filesystem } from "../../image/ext4/ext4-filesystem.js";
import { readAt } from "../../system/read-at.js";
import type { Volume } from "../../image/partition-table.js";
import type { StockFiles } from "../judging/package-files.js";
import type { Finding } from "../finding.js";
import type { ScannedFile } from "../tree-audit.js";

/** An ext filesystem of the image, walked, with its regular files by inode. */
export interface WalkedFilesystem {
  volume: Volume;
  fs: Ext4Filesystem;
  files: Map<number, Ext4File>;
  /** Its directories and symlinks kept in blocks, by inode: their blocks hold bytes beyond what was judged. */
  others?: Map<number, Ext4File>;
}

/** The same, with the recorded base's stock files, and how file scans become findings. */
export interface Walked extends WalkedFilesystem {
  judge: (scanned: ScannedFile[]) => Finding[];
  packages: StockFiles;
}

/**
 * The first `bytes` of a live file (all of it when `bytes` >= its size): one read where its
 * first extent lies when that extent holds them, else through the filesystem reader.
 */
export async function fileHead(handle: FileHandle, w: WalkedFilesystem, file: Ext4File, bytes: number, scratch?: Buffer): Promise<Buffer> {
  const wanted = Math.min(bytes, file.entry.size);
  const first = file.extents.find((r) => r.logicalBlock === 0 && r.uninitialized !== true);
  if (first !== undefined && !file.inline && first.blocks * w.fs.blockSize >= wanted) {
    // Into the caller's scratch buffer when it has room: thousands of files, no garbage.
    const head = scratch !== undefined && scratch.length >= wanted ? scratch.subarray(0, wanted) : Buffer.allocUnsafe(wanted);
    return head.subarray(0, readAt(handle, head, w.volume.offset + first.physicalBlock * w.fs.blockSize));
  }
  const chunks: Buffer[] = [];
  for await (const chunk of w.fs.read(file, bytes)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * Whether a live entry of the walk (a directory, a symlink, any inode's record or xattr block)
 * owns this offset: the tree audit judged those bytes (names, link targets, xattrs) as the entry's.
 */
export function ownedByLiveEntry(w: WalkedFilesystem, offset: number): boolean {
  const inFs = offset - w.volume.offset;
  const owner = w.fs.ownerOf(Math.floor(inFs / w.fs.blockSize));
  if (owner.kind === "file") return true;
  if (owner.kind !== "metadata" || owner.what !== "inode table") return false;
  const inode = w.fs.inodeAtByte(inFs);
  return inode !== undefined && w.fs.pathOf(inode) !== undefined;
}

/** The live directory or symlink whose blocks hold this offset. */
export function ownerEntry(w: WalkedFilesystem, offset: number): Ext4File | undefined {
  const owner = w.fs.ownerOf(Math.floor((offset - w.volume.offset) / w.fs.blockSize));
  return owner.kind === "file" ? w.others?.get(owner.inode) : undefined;
}

/** The live regular file whose bytes (data, or inline data in its inode) hold this offset. */
export function ownerFile(w: WalkedFilesystem, offset: number): Ext4File | undefined {
  const inFs = offset - w.volume.offset;
  const owner = w.fs.ownerOf(Math.floor(inFs / w.fs.blockSize));
  if (owner.kind === "file") return w.files.get(owner.inode);
  if (owner.kind === "metadata" && owner.what === "inode table") {
    const inode = w.fs.inodeAtByte(inFs);
    return inode === undefined ? undefined : w.files.get(inode);
  }
  return undefined;
}

/**
 * `length` bytes of a live file from `offset`, read run by run straight into one buffer (holes
 * and uninitialized runs as zeros; a run overlapping an earlier one read from where that one
 * ends, as the filesystem reader does): an archive is walked by its headers without reading
 * the hundreds of MB between them, or read whole without the reader's 1 MiB chunks.
 */
export async function fileRange(handle: FileHandle, w: WalkedFilesystem, file: Ext4File, offset: number, length: number): Promise<Buffer> {
  const size = file.entry.size;
  const end = Math.min(size, offset + length);
  if (end <= offset) return Buffer.alloc(0);
  if (file.inline) return (await fileHead(handle, w, file, end)).subarray(offset, end);
  const bs = w.fs.blockSize;
  const into = Buffer.alloc(end - offset);
  let covered = 0;
  for (const run of [...file.extents].sort((a, b) => a.logicalBlock - b.logicalBlock)) {
    const start = run.logicalBlock * bs;
    if (start >= end) break;
    const runEnd = Math.min(size, start + run.blocks * bs);
    const from = Math.max(start, covered, offset);
    const to = Math.min(runEnd, end);
    covered = Math.max(covered, runEnd);
    if (to <= from || run.uninitialized === true) continue;
    readAt(handle, into.subarray(from - offset, to - offset), w.volume.offset + run.physicalBlock * bs + (from - start));
  }
  return into;
}
