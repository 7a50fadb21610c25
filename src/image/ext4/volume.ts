import type { GroupBitmaps } from "./bitmaps.js";
import type { BlockOwnerIndex } from "./block-owners.js";
import type { MappingContext } from "./data-runs.js";
import { groupFlags, type GroupDescriptor } from "./group-descriptors.js";
import type { ImageReader } from "./image-reader.js";
import type { InodeTables } from "./inode-table.js";
import type { MetadataRun } from "./metadata-layout.js";
import type { ProblemLog } from "./problem-log.js";
import type { Superblock } from "./superblock.js";

/** Everything read when a filesystem is opened, shared by the walk, the reads and the deleted-inode scan. */
export interface Ext4Volume {
  reader: ImageReader;
  sb: Superblock;
  groups: readonly GroupDescriptor[];
  problems: ProblemLog;
  inodes: InodeTables;
  mapping: MappingContext;
  metadata: readonly MetadataRun[];
  /** Metadata blocks only: what is in use in a group whose block bitmap was never initialized. */
  metadataIndex: BlockOwnerIndex;
  blockBitmaps: GroupBitmaps;
  inodeBitmaps: GroupBitmaps;
}

/** Whether the inode bitmap marks an inode in use; an unreadable bitmap counts as in use. */
export function inodeInUse(volume: Ext4Volume, inode: number): boolean {
  const group = Math.floor((inode - 1) / volume.sb.inodesPerGroup);
  const descriptor = volume.groups[group];
  if (descriptor === undefined) return false;
  if ((descriptor.flags & groupFlags.inodeUninit) !== 0) return false;
  if (!volume.inodeBitmaps.isKnown(group)) return true;
  return volume.inodeBitmaps.isSet(group, (inode - 1) % volume.sb.inodesPerGroup);
}

/** Whether the block bitmap marks a block in use; a never-initialized group uses only its metadata. */
export function blockInUse(volume: Ext4Volume, block: number): boolean {
  const { sb } = volume;
  if (block < sb.firstDataBlock) return true;
  const group = Math.floor((block - sb.firstDataBlock) / sb.blocksPerGroup);
  const descriptor = volume.groups[group];
  if (descriptor === undefined) return false;
  if ((descriptor.flags & groupFlags.blockUninit) !== 0) return volume.metadataIndex.find(block) >= 0;
  if (!volume.blockBitmaps.isKnown(group)) return true;
  return volume.blockBitmaps.isSet(group, (block - sb.firstDataBlock) % sb.blocksPerGroup);
}
