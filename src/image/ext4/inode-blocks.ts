import { mapIndirectBlocks } from "./block-map.js";
import type { BlockMapping, MappingContext } from "./data-runs.js";
import { mapExtentTree } from "./extents.js";
import { blockArea, inodeFlags, type Inode } from "./inode.js";

/** Maps an inode's blocks through its extent tree, or its ext2/3 block map when it has no extents flag. */
export function mapInodeBlocks(inode: Inode, context: MappingContext): Promise<BlockMapping> {
  const area = blockArea(inode);
  return (inode.flags & inodeFlags.extents) !== 0
    ? mapExtentTree(area, `inode ${inode.number}`, context)
    : mapIndirectBlocks(area, `inode ${inode.number}`, context);
}
