import { readDirents, type DirectoryEntry, type DirentReading } from "./directory.js";
import type { DeletedInode } from "./ext4-filesystem.js";
import { fileTypes } from "./inode.js";
import { ignoreProblems } from "./problem-log.js";
import { incompat } from "./superblock.js";
import type { Ext4Volume } from "./volume.js";

/** A removed directory bigger than this is not searched for names: its blocks are likely reused. */
const maxDirectoryBlocks = 256;

/**
 * Names deleted inodes from the blocks of deleted directories (removed with debugfs, which leaves
 * them intact): a child of a directory whose own former path is known gets that path plus its
 * name. Repeated so that a removed tree is named from its top down.
 */
export async function nameFromDeletedDirectories(volume: Ext4Volume, deleted: DeletedInode[]): Promise<void> {
  const byInode = new Map(deleted.map((d) => [d.inode, d]));
  const directories = deleted.filter((d) => (d.mode & 0o170000) === fileTypes.directory && d.runs.reduce((n, r) => n + r.blocks, 0) <= maxDirectoryBlocks);
  const children = new Map<number, DirectoryEntry[]>();
  for (const directory of directories) children.set(directory.inode, await entriesOf(volume, directory));
  for (let named = true; named;) {
    named = false;
    for (const directory of directories) {
      if (directory.formerPath === undefined) continue;
      for (const { inode, name } of children.get(directory.inode) ?? []) {
        const child = byInode.get(inode);
        if (child === undefined || child.formerPath !== undefined || child === directory) continue;
        child.formerPath = `${directory.formerPath}/${name}`;
        named = true;
      }
    }
  }
}

async function entriesOf(volume: Ext4Volume, directory: DeletedInode): Promise<DirectoryEntry[]> {
  const { sb, reader } = volume;
  const reading: DirentReading = {
    hasFileType: (sb.incompat & incompat.fileType) !== 0, inodesCount: sb.inodesCount, blockSize: sb.blockSize,
    indexed: false, live: [], deleted: [], problems: ignoreProblems,
  };
  for (const run of directory.runs) {
    const bytes = await reader.blocks(run.physicalBlock, run.blocks);
    for (let i = 0; i < run.blocks; i++) readDirents(bytes, i * sb.blockSize, (i + 1) * sb.blockSize, reading, "", run.logicalBlock + i === 0);
  }
  return [...reading.live, ...(reading.deleted ?? [])];
}
