import { blockArea, type Inode } from "./inode.js";
import type { ProblemSink } from "./problem-log.js";

const xattrMagic = 0xea020000;
const systemIndex = 7;

/**
 * The value of the in-inode `system.data` xattr: the part of inline data that does not fit in
 * i_block. Empty when absent; a malformed xattr area is a problem, never an exception.
 */
export function systemDataValue(inode: Inode, problems: ProblemSink): Buffer {
  const raw = inode.raw;
  if (raw.length <= 128 + 2) return Buffer.alloc(0);
  const extra = raw.readUInt16LE(0x80);
  const header = 128 + extra;
  if (extra % 4 !== 0 || header + 4 > raw.length || raw.readUInt32LE(header) !== xattrMagic) return Buffer.alloc(0);
  const first = header + 4;
  for (let at = first; at + 16 <= raw.length && raw.readUInt32LE(at) !== 0;) {
    const nameLength = raw[at] ?? 0;
    const index = raw[at + 1] ?? 0;
    const valueOffset = raw.readUInt16LE(at + 2);
    const valueInode = raw.readUInt32LE(at + 4);
    const valueSize = raw.readUInt32LE(at + 8);
    if (at + 16 + nameLength > raw.length) break;
    if (index === systemIndex && nameLength === 4 && raw.toString("latin1", at + 16, at + 20) === "data") {
      if (valueInode !== 0 || first + valueOffset + valueSize > raw.length) {
        problems.note(`inode ${inode.number}: its inline data xattr points outside the inode`);
        return Buffer.alloc(0);
      }
      return raw.subarray(first + valueOffset, first + valueOffset + valueSize);
    }
    at += (16 + nameLength + 3) & ~3;
  }
  return Buffer.alloc(0);
}

/** An inline file's bytes: i_block first, then the xattr value, cut at i_size. */
export function inlineContent(inode: Inode, problems: ProblemSink): Buffer {
  const content = Buffer.concat([blockArea(inode), systemDataValue(inode, problems)]);
  if (inode.size > content.length) problems.note(`inode ${inode.number}: inline data holds ${content.length} bytes, its size says ${inode.size}`);
  return content.subarray(0, Math.min(inode.size, content.length));
}
