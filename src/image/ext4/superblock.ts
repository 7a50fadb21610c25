import { KilnError } from "../../errors.js";

/** Byte offset of the primary superblock from the start of the filesystem. */
export const superblockOffset = 1024;
export const superblockSize = 1024;
const extMagic = 0xef53;

export const compat = { hasJournal: 0x4, resizeInode: 0x10, sparseSuper2: 0x200 } as const;
export const incompat = {
  compression: 0x1, fileType: 0x2, recover: 0x4, journalDevice: 0x8, metaBg: 0x10, extents: 0x40,
  bit64: 0x80, mmp: 0x100, flexBg: 0x200, eaInode: 0x400, dirData: 0x1000, largeDir: 0x4000,
  inlineData: 0x8000, encrypt: 0x10000,
} as const;
export const roCompat = { sparseSuper: 0x1, gdtChecksum: 0x10, bigalloc: 0x200, metadataChecksum: 0x400 } as const;

/** The fields of an ext2/3/4 superblock kiln reads, with the 64bit halves already joined. */
export interface Superblock {
  inodesCount: number;
  blocksCount: number;
  firstDataBlock: number;
  blockSize: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  inodeSize: number;
  firstInode: number;
  descriptorSize: number;
  groupCount: number;
  reservedGdtBlocks: number;
  firstMetaBg: number;
  journalInode: number;
  mmpBlock: number;
  backupGroups: [number, number];
  /** Hidden inodes that hold filesystem data (quota, orphan file), as [inode, what]. */
  hiddenInodes: Array<[number, string]>;
  compat: number;
  incompat: number;
  roCompat: number;
}

/** Feature bits kiln cannot read past, each with why. */
const unsupported: Array<[keyof typeof incompat | "bigalloc", string]> = [
  ["compression", "compression (an abandoned ext2 patch)"],
  ["journalDevice", "journal_dev (this is an external journal, not a filesystem)"],
  ["dirData", "dirdata (Lustre directory data)"],
  ["encrypt", "encrypt (file names and contents are ciphertext)"],
  ["bigalloc", "bigalloc (cluster allocation)"],
];

/** Parses and checks the superblock; anything that would make every later read meaningless is an error here. */
export function parseSuperblock(raw: Buffer, image: string, offset: number): Superblock {
  if (raw.length < superblockSize || raw.readUInt16LE(56) !== extMagic) {
    throw new KilnError("KILN_AUDIT_NOT_EXT", `${image} holds no ext2/3/4 filesystem at byte ${offset} (no superblock magic 0xEF53 at byte ${offset + superblockOffset + 56})`, {
      hint: "kiln audit reads raw disk images whose root filesystem is ext2, ext3 or ext4",
    });
  }
  const corrupt = (what: string): KilnError => new KilnError("KILN_AUDIT_EXT_CORRUPT", `${image}: the ext superblock at byte ${offset + superblockOffset} is corrupt: ${what}`, {
    hint: "run `e2fsck -n` on the image to see what is wrong with it",
  });
  const u32 = (at: number): number => raw.readUInt32LE(at);
  const u16 = (at: number): number => raw.readUInt16LE(at);
  const logBlockSize = u32(24);
  if (logBlockSize > 6) throw corrupt(`block size 2^${10 + logBlockSize} is larger than 64 KiB`);
  const blockSize = 1024 << logBlockSize;
  const incompatBits = u32(96);
  const roCompatBits = u32(100);
  const bit64 = (incompatBits & incompat.bit64) !== 0;
  const revision = u32(76);
  const blocksCount = u32(4) + (bit64 ? u32(0x150) * 2 ** 32 : 0);
  const inodeSize = revision === 0 ? 128 : u16(88);
  const descriptorSize = bit64 ? u16(0xfe) : 32;
  const sb: Superblock = {
    inodesCount: u32(0), blocksCount, firstDataBlock: u32(20), blockSize,
    blocksPerGroup: u32(32), inodesPerGroup: u32(40), inodeSize,
    firstInode: revision === 0 ? 11 : u32(84), descriptorSize, groupCount: 0,
    reservedGdtBlocks: u16(0xce), firstMetaBg: u32(0x104), journalInode: u32(0xe0),
    mmpBlock: (incompatBits & incompat.mmp) !== 0 ? u32(0x168) + u32(0x16c) * 2 ** 32 : 0,
    backupGroups: [u32(0x24c), u32(0x250)], hiddenInodes: [],
    compat: u32(92), incompat: incompatBits, roCompat: roCompatBits,
  };
  rejectUnsupported(sb, image);
  if (blocksCount > Number.MAX_SAFE_INTEGER / blockSize) throw corrupt(`block count ${blocksCount} is impossibly large`);
  if (sb.firstDataBlock !== (blockSize === 1024 ? 1 : 0)) throw corrupt(`first data block ${sb.firstDataBlock} does not fit block size ${blockSize}`);
  if (blocksCount <= sb.firstDataBlock) throw corrupt(`block count ${blocksCount} is too small`);
  if (sb.blocksPerGroup === 0 || sb.blocksPerGroup > 8 * blockSize) throw corrupt(`${sb.blocksPerGroup} blocks per group`);
  if (sb.inodesPerGroup === 0 || sb.inodesPerGroup > 8 * blockSize) throw corrupt(`${sb.inodesPerGroup} inodes per group`);
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) throw corrupt(`inode size ${inodeSize}`);
  if (descriptorSize < 32 || descriptorSize > 1024 || (descriptorSize & (descriptorSize - 1)) !== 0) throw corrupt(`group descriptor size ${descriptorSize}`);
  sb.groupCount = Math.ceil((blocksCount - sb.firstDataBlock) / sb.blocksPerGroup);
  if (sb.inodesCount > sb.groupCount * sb.inodesPerGroup || sb.inodesCount === 0) throw corrupt(`${sb.inodesCount} inodes for ${sb.groupCount} groups of ${sb.inodesPerGroup}`);
  if (sb.firstInode < 11 || sb.firstInode > sb.inodesCount) sb.firstInode = 11;
  const hidden: Array<[number, string]> = [[u32(0x240), "user quota inode"], [u32(0x244), "group quota inode"], [u32(0x26c), "project quota inode"], [u32(0x280), "orphan file inode"]];
  sb.hiddenInodes = hidden.filter(([inode]) => inode !== 0 && inode <= sb.inodesCount);
  return sb;
}

function rejectUnsupported(sb: Superblock, image: string): void {
  const present = unsupported.filter(([feature]) => feature === "bigalloc"
    ? (sb.roCompat & roCompat.bigalloc) !== 0
    : (sb.incompat & incompat[feature]) !== 0);
  if (present.length === 0) return;
  throw new KilnError("KILN_AUDIT_EXT_UNSUPPORTED", `${image}: the ext filesystem uses a feature kiln cannot read: ${present.map(([, why]) => why).join(", ")}`, {
    hint: "audit a copy written without it (mke2fs -d from the tree), or audit the tree itself",
  });
}

export function hasFeature(sb: Superblock, field: "compat" | "incompat" | "roCompat", bit: number): boolean {
  return (sb[field] & bit) !== 0;
}

/** bg_itable_unused and the UNINIT flags are only maintained when group descriptors carry checksums. */
export function hasGroupChecksums(sb: Superblock): boolean {
  return (sb.roCompat & (roCompat.gdtChecksum | roCompat.metadataChecksum)) !== 0;
}
