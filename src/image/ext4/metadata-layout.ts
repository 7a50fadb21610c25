import {
  descriptorsPerBlock, groupFirstBlock, hasSuperblockCopy, inodeTableBlocks, leadingDescriptorBlocks,
  type GroupDescriptor,
} from "./group-descriptors.js";
import { hasFeature, incompat, type Superblock } from "./superblock.js";

/** A run of blocks that belong to the filesystem itself rather than to any file. */
export interface MetadataRun {
  start: number;
  count: number;
  what: string;
}

/**
 * Every metadata block the layout implies: boot block, superblock and descriptor copies with the
 * reserved descriptor blocks, meta_bg descriptor blocks, bitmaps and inode tables, the MMP block.
 */
export function metadataRuns(sb: Superblock, groups: readonly GroupDescriptor[]): MetadataRun[] {
  const runs: MetadataRun[] = [];
  const add = (start: number, count: number, what: string): void => {
    if (count > 0 && start >= 0 && start < sb.blocksCount) runs.push({ start, count: Math.min(count, sb.blocksCount - start), what });
  };
  if (sb.firstDataBlock > 0) add(0, sb.firstDataBlock, "boot block");
  const leading = leadingDescriptorBlocks(sb);
  const metaBg = hasFeature(sb, "incompat", incompat.metaBg);
  const perBlock = descriptorsPerBlock(sb);
  const tableBlocks = inodeTableBlocks(sb);
  for (let group = 0; group < sb.groupCount; group++) {
    const first = groupFirstBlock(sb, group);
    const copy = hasSuperblockCopy(sb, group);
    const backup = group === 0 ? "" : " backup";
    if (copy) add(first, 1, `superblock${backup}`);
    const metaGroup = Math.floor(group / perBlock);
    if (!metaBg || metaGroup < sb.firstMetaBg) {
      if (copy) {
        add(first + 1, leading, `group descriptors${backup}`);
        add(first + 1 + leading, sb.reservedGdtBlocks, "reserved group descriptor blocks");
      }
    } else {
      const inMetaGroup = group % perBlock;
      if (inMetaGroup === 0 || inMetaGroup === 1 || inMetaGroup === perBlock - 1) {
        add(first + (copy ? 1 : 0), 1, inMetaGroup === 0 ? "group descriptors" : "group descriptors backup");
      }
    }
    const descriptor = groups[group];
    if (descriptor === undefined) continue;
    if (descriptor.blockBitmap >= 0) add(descriptor.blockBitmap, 1, "block bitmap");
    if (descriptor.inodeBitmap >= 0) add(descriptor.inodeBitmap, 1, "inode bitmap");
    if (descriptor.inodeTable >= 0) add(descriptor.inodeTable, tableBlocks, "inode table");
  }
  if (sb.mmpBlock > 0) add(sb.mmpBlock, 1, "multiple-mount protection block");
  return runs;
}
