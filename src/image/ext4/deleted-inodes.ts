import type { BlockOwnerIndex } from "./block-owners.js";
import type { PhysicalRun } from "./data-runs.js";
import { nameFromDeletedDirectories } from "./deleted-names.js";
import type { DeletedInode } from "./ext4-filesystem.js";
import { groupFlags } from "./group-descriptors.js";
import { mapInodeBlocks } from "./inode-blocks.js";
import { mayHaveBlocks, parseInode } from "./inode.js";
import { ignoreProblems } from "./problem-log.js";
import { incompat } from "./superblock.js";
import type { Ext4Volume } from "./volume.js";

/**
 * Inodes the inode bitmap calls free that still describe data: a mode, a deletion time (or no
 * links left) and a block map or extent tree that was not wiped. Only blocks no live inode or
 * metadata owns now are reported. Each group's inode table is read once, in one piece.
 */
export async function findDeletedInodes(volume: Ext4Volume, owners: BlockOwnerIndex, formerNames: ReadonlyMap<number, string>): Promise<DeletedInode[]> {
  const { sb, reader, groups } = volume;
  const bit64 = (sb.incompat & incompat.bit64) !== 0;
  // A stale map points at whatever the blocks hold now: its oddities are expected, not problems.
  const mapping = { ...volume.mapping, problems: ignoreProblems };
  const found: DeletedInode[] = [];
  for (let group = 0; group < groups.length; group++) {
    const descriptor = groups[group]!;
    if (descriptor.inodeTable < 0 || descriptor.usedInodes === 0 || (descriptor.flags & groupFlags.inodeUninit) !== 0) continue;
    if (!volume.inodeBitmaps.isKnown(group)) continue;
    const table = await reader.blocks(descriptor.inodeTable, Math.ceil((descriptor.usedInodes * sb.inodeSize) / sb.blockSize));
    for (let index = 0; index < descriptor.usedInodes; index++) {
      const number = group * sb.inodesPerGroup + index + 1;
      if (number > sb.inodesCount) break;
      if (number < sb.firstInode || volume.inodeBitmaps.isSet(group, index)) continue;
      const at = index * sb.inodeSize;
      if (table.readUInt16LE(at) === 0) continue;
      const inode = parseInode(table.subarray(at, at + sb.inodeSize), number, bit64);
      if ((inode.dtime === 0 && inode.linksCount !== 0) || !mayHaveBlocks(inode, sb.blockSize)) continue;
      const runs = unowned((await mapInodeBlocks(inode, mapping)).runs, owners);
      if (runs.length === 0) continue;
      const deleted: DeletedInode = { inode: number, mode: inode.mode, size: inode.size, dtime: inode.dtime, runs };
      const formerPath = formerNames.get(number);
      if (formerPath !== undefined) deleted.formerPath = formerPath;
      found.push(deleted);
    }
  }
  await nameFromDeletedDirectories(volume, found);
  return found;
}

/** The parts of `runs` that nothing live owns now. */
function unowned(runs: readonly PhysicalRun[], owners: BlockOwnerIndex): PhysicalRun[] {
  const kept: PhysicalRun[] = [];
  for (const run of runs) {
    for (const segment of owners.segments(run.physicalBlock, run.blocks)) {
      if (segment.owner >= 0) continue;
      const piece: PhysicalRun = { logicalBlock: run.logicalBlock + (segment.start - run.physicalBlock), physicalBlock: segment.start, blocks: segment.count };
      if (run.uninitialized === true) piece.uninitialized = true;
      kept.push(piece);
    }
  }
  return kept;
}
