import type { Inode } from "./inode.js";
import type { ImageReader } from "./image-reader.js";
import type { ProblemSink } from "./problem-log.js";

const xattrMagic = 0xea020000;
/** The name prefixes of ext4's xattr name indexes (fs/ext4/xattr.c). */
const prefixes: Record<number, string> = {
  1: "user.", 2: "system.posix_acl_access", 3: "system.posix_acl_default", 4: "trusted.", 6: "security.", 7: "system.", 8: "system.richacl",
};

export interface Xattr {
  name: string;
  value: Buffer;
}

/**
 * Every extended attribute of an inode: those in the inode body after its extra fields, and
 * those in its external xattr block (`xattrBlock`, checked to lie in the filesystem; 0: none). A value stored in an inode of its own (ea_inode) or a
 * malformed area is a problem, never an exception.
 */
export async function readXattrs(inode: Inode, xattrBlock: number, reader: ImageReader, problems: ProblemSink): Promise<Xattr[]> {
  const found: Xattr[] = [];
  const raw = inode.raw;
  if (raw.length > 128 + 2) {
    const header = 128 + raw.readUInt16LE(0x80);
    if (header + 4 <= raw.length && raw.readUInt32LE(header) === xattrMagic) parseEntries(raw, header + 4, header + 4, raw.length, inode, problems, found);
  }
  if (xattrBlock !== 0) {
    const block = await reader.blocks(xattrBlock, 1);
    if (block.length >= 32 && block.readUInt32LE(0) === xattrMagic) parseEntries(block, 32, 0, block.length, inode, problems, found);
    else problems.note(`inode ${inode.number}: its xattr block ${xattrBlock} has no xattr header`);
  }
  return found.filter((x) => x.name !== "system.data"); // inline data: read as the file's content
}

function parseEntries(area: Buffer, first: number, valueBase: number, end: number, inode: Inode, problems: ProblemSink, into: Xattr[]): void {
  for (let at = first; at + 16 <= end && area.readUInt32LE(at) !== 0;) {
    const nameLength = area[at] ?? 0;
    const index = area[at + 1] ?? 0;
    const valueOffset = area.readUInt16LE(at + 2);
    const valueInode = area.readUInt32LE(at + 4);
    const valueSize = area.readUInt32LE(at + 8);
    if (at + 16 + nameLength > end) break;
    const name = `${prefixes[index] ?? `index${index}.`}${area.toString("latin1", at + 16, at + 16 + nameLength)}`;
    if (valueInode !== 0) problems.note(`inode ${inode.number}: xattr ${name} is stored in inode ${valueInode}, which kiln does not read`);
    else if (valueBase + valueOffset + valueSize > end) problems.note(`inode ${inode.number}: xattr ${name} points outside its area`);
    else into.push({ name, value: area.subarray(valueBase + valueOffset, valueBase + valueOffset + valueSize) });
    at += (16 + nameLength + 3) & ~3;
  }
}
