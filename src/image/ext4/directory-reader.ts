import type { PhysicalRun } from "./data-runs.js";
import { readDirents, type DirectoryEntry, type DirentReading } from "./directory.js";
import { chunkBytes } from "./file-content.js";
import { systemDataValue } from "./inline-data.js";
import { blockArea, hasInlineData, inodeFlags, type Inode } from "./inode.js";
import { incompat } from "./superblock.js";
import type { Ext4Volume } from "./volume.js";

/**
 * A directory's live entries (htree directories read linearly: their index nodes look like empty
 * entries), and into `deleted` the removed entries still readable in its blocks.
 */
export async function readDirectory(volume: Ext4Volume, inode: Inode, runs: readonly PhysicalRun[], path: string, deleted: DirectoryEntry[] | undefined): Promise<DirectoryEntry[]> {
  const { sb, reader } = volume;
  const reading: DirentReading = {
    hasFileType: (sb.incompat & incompat.fileType) !== 0,
    inodesCount: sb.inodesCount,
    blockSize: sb.blockSize,
    indexed: (inode.flags & inodeFlags.index) !== 0,
    live: [],
    deleted,
    problems: volume.problems,
  };
  if (hasInlineData(inode)) {
    // i_block starts with the parent's inode number; entries follow, then more in the system.data xattr.
    readDirents(blockArea(inode), 4, 60, reading, `${path} (inline directory)`, false);
    const more = systemDataValue(inode, volume.problems);
    if (more.length > 0) readDirents(more, 0, more.length, reading, `${path} (inline directory xattr)`, false);
    return reading.live;
  }
  const maxBlocks = Math.max(1, Math.floor(chunkBytes / sb.blockSize));
  for (const run of runs) {
    if (run.uninitialized === true) continue;
    for (let done = 0; done < run.blocks;) {
      const count = Math.min(maxBlocks, run.blocks - done);
      const bytes = await reader.blocks(run.physicalBlock + done, count);
      for (let i = 0; i < count; i++) {
        const logical = run.logicalBlock + done + i;
        const start = i * sb.blockSize;
        readDirents(bytes, start, start + sb.blockSize, reading, `${path} (directory block ${logical})`, logical === 0);
      }
      done += count;
    }
  }
  return reading.live;
}
