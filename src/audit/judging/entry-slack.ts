import type { FileHandle } from "node:fs/promises";
import type { Ext4File } from "../../image/ext4/ext4-filesystem.js";
import { readAt } from "../../system/read-at.js";
import type { WalkedFilesystem } from "../sources/walked-filesystem.js";

/**
 * Whether a byte in a block a live entry owns is one the tree audit judged as that entry's: a
 * file's or symlink's content before its size, a directory's live names. Everything else there
 * (past i_size in the last block or in blocks mapped beyond it, a preallocated extent that reads
 * as zeros, a directory block's unused space, an extent tree block's room past its last entry)
 * is kept by the image and read
 * by anyone with dd, yet no file read returns it: it is judged as hidden data.
 */
export function judgedAsEntry(handle: FileHandle, w: WalkedFilesystem, entry: Ext4File, offset: number): boolean {
  const bs = w.fs.blockSize;
  const inFs = offset - w.volume.offset;
  const block = Math.floor(inFs / bs);
  const run = entry.extents.find((r) => block >= r.physicalBlock && block < r.physicalBlock + r.blocks);
  // Not a data block: its xattr block (whose values the tree audit judged) or its extent tree.
  if (run === undefined) {
    const bytes = Buffer.alloc(bs);
    readAt(handle, bytes, w.volume.offset + block * bs);
    return !inExtentNodeSlack(bytes, inFs % bs);
  }
  if (run.uninitialized === true) return false;
  if (entry.entry.type === "directory") {
    const bytes = Buffer.alloc(bs);
    readAt(handle, bytes, w.volume.offset + block * bs);
    return inLiveName(bytes, inFs % bs);
  }
  const size = entry.entry.type === "symlink" ? Buffer.byteLength(entry.entry.linkTarget ?? "") : entry.entry.size;
  return (run.logicalBlock + block - run.physicalBlock) * bs + (inFs % bs) < size;
}

/** Whether `at` lies in the name of a live entry of a directory block (a chain of rec_len). */
function inLiveName(block: Buffer, at: number): boolean {
  for (let pos = 0; pos + 8 <= block.length;) {
    const recordLength = block.readUInt16LE(pos + 4);
    const nameLength = block[pos + 6] ?? 0;
    if (block.readUInt32LE(pos) !== 0 && at >= pos + 8 && at < pos + 8 + nameLength) return true;
    if (recordLength < 8 || at < pos + recordLength) return false;
    pos += recordLength;
  }
  return false;
}

const xattrMagic = 0xea020000;
const extentMagic = 0xf30a;
/** i_block: 60 bytes from byte 40 of the record; with EXTENTS_FL, the extent tree's root node. */
const iBlock = { start: 40, end: 100 };
const extentsFlag = 0x80000;

/**
 * Whether `at` lies in an extent node's spare room: past its eh_entries entries (a 12-byte
 * header, then 12 bytes an entry). ext4 and e2fsck read no further; the room holds what it is given.
 */
function inExtentNodeSlack(node: Buffer, at: number): boolean {
  if (node.length < 12 || node.readUInt16LE(0) !== extentMagic) return false;
  const entries = Math.min(node.readUInt16LE(2), Math.floor((node.length - 12) / 12));
  return at >= 12 + entries * 12 && at < node.length;
}

/**
 * Whether a byte of a live inode's record is in its unused space: past its fields (i_extra_isize)
 * and outside the names and values of its in-inode extended attributes, or in the slots of its
 * i_block past the extent tree root's entries. Bytes no tool reads, but a copy of the image
 * keeps (a token fits in the hundred bytes of a 256-byte inode, or the 48 of an empty file's root).
 */
export function inInodeSlack(handle: FileHandle, w: WalkedFilesystem, offset: number): boolean {
  const record = w.fs.inodeRecordAt(offset - w.volume.offset);
  if (record === undefined || record.size < iBlock.end || w.fs.pathOf(record.inode) === undefined) return false;
  const bytes = Buffer.alloc(record.size);
  readAt(handle, bytes, w.volume.offset + record.start);
  const at = offset - w.volume.offset - record.start;
  // Inline data and fast symlinks keep their content in i_block instead: no EXTENTS_FL there.
  if (at >= iBlock.start && at < iBlock.end) return (bytes.readUInt32LE(32) & extentsFlag) !== 0 && inExtentNodeSlack(bytes.subarray(iBlock.start, iBlock.end), at - iBlock.start);
  if (record.size <= 132) return false;
  const xattrs = 128 + bytes.readUInt16LE(128);
  if (at < xattrs + 4 || xattrs + 4 > bytes.length) return false;
  if (bytes.readUInt32LE(xattrs) !== xattrMagic) return true;
  const first = xattrs + 4;
  for (let entry = first; entry + 16 <= bytes.length && bytes.readUInt32LE(entry) !== 0;) {
    const nameLength = bytes[entry] ?? 0;
    const value = first + bytes.readUInt16LE(entry + 2);
    const valueSize = bytes.readUInt32LE(entry + 8);
    const end = entry + 16 + Math.ceil(nameLength / 4) * 4;
    if (at >= entry && at < end) return false;
    if (at >= value && at < value + valueSize) return false;
    entry = end;
  }
  return true;
}
