import type { ImageReader } from "./image-reader.js";
import type { ProblemSink } from "./problem-log.js";
import { compat, hasFeature, hasGroupChecksums, incompat, roCompat, type Superblock } from "./superblock.js";

export const groupFlags = { inodeUninit: 0x1, blockUninit: 0x2 } as const;

/** One block group's descriptor; a location is -1 when the descriptor points outside the filesystem. */
export interface GroupDescriptor {
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
  flags: number;
  /** Inodes at the start of the inode table that may be in use (all of them without group checksums). */
  usedInodes: number;
}

export function groupFirstBlock(sb: Superblock, group: number): number {
  return sb.firstDataBlock + group * sb.blocksPerGroup;
}

export function inodeTableBlocks(sb: Superblock): number {
  return Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize);
}

/** Whether a group holds a copy of the superblock (and the descriptor table with it). */
export function hasSuperblockCopy(sb: Superblock, group: number): boolean {
  if (group === 0) return true;
  if (hasFeature(sb, "compat", compat.sparseSuper2)) return group === sb.backupGroups[0] || group === sb.backupGroups[1];
  if (group <= 1 || !hasFeature(sb, "roCompat", roCompat.sparseSuper)) return true;
  if ((group & 1) === 0) return false;
  return isPowerOf(group, 3) || isPowerOf(group, 5) || isPowerOf(group, 7);
}

function isPowerOf(value: number, base: number): boolean {
  let n = base;
  while (n < value) n *= base;
  return n === value;
}

export function descriptorsPerBlock(sb: Superblock): number {
  return sb.blockSize / sb.descriptorSize;
}

/** Blocks of descriptor table right after a superblock copy: all of it, or only the part before meta_bg starts. */
export function leadingDescriptorBlocks(sb: Superblock): number {
  const all = Math.ceil(sb.groupCount / descriptorsPerBlock(sb));
  return hasFeature(sb, "incompat", incompat.metaBg) ? Math.min(sb.firstMetaBg, all) : all;
}

/** Where descriptor block `index` lives: after the primary superblock, or (meta_bg) in the first group it describes. */
export function descriptorBlockLocation(sb: Superblock, index: number): number {
  if (index < leadingDescriptorBlocks(sb)) return sb.firstDataBlock + 1 + index;
  const group = index * descriptorsPerBlock(sb);
  return groupFirstBlock(sb, group) + (hasSuperblockCopy(sb, group) ? 1 : 0);
}

export async function readGroupDescriptors(reader: ImageReader, sb: Superblock, problems: ProblemSink): Promise<GroupDescriptor[]> {
  const perBlock = descriptorsPerBlock(sb);
  const blockCount = Math.ceil(sb.groupCount / perBlock);
  const leading = leadingDescriptorBlocks(sb);
  const table = leading > 0 ? await reader.blocks(sb.firstDataBlock + 1, leading) : Buffer.alloc(0);
  const rest: Buffer[] = [];
  for (let index = leading; index < blockCount; index++) rest.push(await reader.blocks(descriptorBlockLocation(sb, index), 1));
  const all = Buffer.concat([table, ...rest]);
  const bit64 = sb.descriptorSize >= 64;
  const checksums = hasGroupChecksums(sb);
  const tableBlocks = inodeTableBlocks(sb);
  const descriptors: GroupDescriptor[] = [];
  for (let group = 0; group < sb.groupCount; group++) {
    const at = group * sb.descriptorSize;
    const u32 = (lo: number, hi: number): number => all.readUInt32LE(at + lo) + (bit64 ? all.readUInt32LE(at + hi) * 2 ** 32 : 0);
    const u16 = (lo: number, hi: number): number => all.readUInt16LE(at + lo) + (bit64 ? all.readUInt16LE(at + hi) * 65536 : 0);
    const inBounds = (block: number, length: number, what: string): number => {
      if (block >= sb.firstDataBlock && block + length <= sb.blocksCount) return block;
      problems.note(`group ${group}: ${what} at block ${block} is outside the filesystem`);
      return -1;
    };
    const flags = checksums ? all.readUInt16LE(at + 0x12) : 0;
    const unused = checksums ? Math.min(u16(0x1c, 0x32), sb.inodesPerGroup) : 0;
    descriptors.push({
      blockBitmap: inBounds(u32(0x0, 0x20), 1, "block bitmap"),
      inodeBitmap: inBounds(u32(0x4, 0x24), 1, "inode bitmap"),
      inodeTable: inBounds(u32(0x8, 0x28), tableBlocks, "inode table"),
      flags,
      usedInodes: (flags & groupFlags.inodeUninit) !== 0 ? 0 : sb.inodesPerGroup - unused,
    });
  }
  return descriptors;
}
