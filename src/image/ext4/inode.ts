import type { TreeEntry } from "../../audit/sources/image-tree.js";

export const inodeFlags = { index: 0x1000, hugeFile: 0x40000, extents: 0x80000, eaInode: 0x200000, inlineData: 0x10000000 } as const;
export const rootInode = 2;
export const resizeInode = 7;

const typeMask = 0o170000;
export const fileTypes = { regular: 0o100000, directory: 0o040000, symlink: 0o120000 } as const;

/** The fields of an on-disk inode kiln reads; `raw` is the whole inode record (i_block, extra space, in-inode xattrs). */
export interface Inode {
  number: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linksCount: number;
  dtime: number;
  flags: number;
  /** 512-byte sectors (or blocks, for huge files) charged to the inode, including its xattr block. */
  blocks: number;
  /** The external xattr block, 0 for none. */
  xattrBlock: number;
  raw: Buffer;
}

export function parseInode(raw: Buffer, number: number, bit64: boolean): Inode {
  const flags = raw.readUInt32LE(0x20);
  return {
    number,
    mode: raw.readUInt16LE(0x0),
    uid: raw.readUInt16LE(0x2) + raw.readUInt16LE(0x78) * 65536,
    gid: raw.readUInt16LE(0x18) + raw.readUInt16LE(0x7a) * 65536,
    size: raw.readUInt32LE(0x4) + raw.readUInt32LE(0x6c) * 2 ** 32,
    linksCount: raw.readUInt16LE(0x1a),
    dtime: raw.readUInt32LE(0x14),
    flags,
    blocks: raw.readUInt32LE(0x1c) + raw.readUInt16LE(0x74) * 2 ** 32,
    xattrBlock: raw.readUInt32LE(0x68) + (bit64 ? raw.readUInt16LE(0x76) * 2 ** 32 : 0),
    raw,
  };
}

/** The 60 bytes of i_block: an extent root, a block map, a fast symlink's target or inline data. */
export function blockArea(inode: Inode): Buffer {
  return inode.raw.subarray(0x28, 0x28 + 60);
}

export function entryType(mode: number): TreeEntry["type"] {
  switch (mode & typeMask) {
    case fileTypes.regular: return "file";
    case fileTypes.directory: return "directory";
    case fileTypes.symlink: return "symlink";
    default: return "other";
  }
}

export function isType(inode: Inode, type: number): boolean {
  return (inode.mode & typeMask) === type;
}

export function hasInlineData(inode: Inode): boolean {
  return (inode.flags & inodeFlags.inlineData) !== 0;
}

/** Regular files, directories and symlinks have data blocks; device numbers in i_block are not block pointers. */
export function mayHaveBlocks(inode: Inode, blockSize: number): boolean {
  if (hasInlineData(inode)) return false;
  if (isType(inode, fileTypes.regular) || isType(inode, fileTypes.directory)) return true;
  return isType(inode, fileTypes.symlink) && !isFastSymlink(inode, blockSize);
}

/** A symlink whose target sits in i_block: no data blocks charged beyond its xattr block (the kernel's rule). */
export function isFastSymlink(inode: Inode, blockSize: number): boolean {
  if (!isType(inode, fileTypes.symlink) || hasInlineData(inode) || (inode.flags & inodeFlags.extents) !== 0) return false;
  const xattrSectors = inode.xattrBlock !== 0 ? blockSize / 512 : 0;
  return inode.size < 60 && inode.blocks - xattrSectors <= 0;
}

export function treeEntry(inode: Inode, path: string): TreeEntry {
  const type = entryType(inode.mode);
  return { path, type, mode: inode.mode & 0o7777, uid: inode.uid, gid: inode.gid, size: type === "file" ? inode.size : 0 };
}
