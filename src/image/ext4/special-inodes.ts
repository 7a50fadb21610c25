import type { BlockOwnership } from "./block-ownership.js";
import { inFilesystem } from "./data-runs.js";
import { mapInodeBlocks } from "./inode-blocks.js";
import { blockArea, hasInlineData, resizeInode, rootInode } from "./inode.js";
import { compat, hasFeature } from "./superblock.js";
import type { Ext4Volume } from "./volume.js";

const reservedInodes: Record<number, string> = {
  1: "bad blocks inode", 3: "user quota inode", 4: "group quota inode", 5: "boot loader inode",
  6: "undelete directory inode", 9: "snapshot exclude inode", 10: "replica inode",
};

/**
 * Claims the blocks of inodes no directory names: the journal, the resize inode's indirect block,
 * the reserved inodes and the quota and orphan files. Without this their blocks would look like
 * allocated data nobody owns.
 */
export async function claimHiddenInodes(volume: Ext4Volume, ownership: BlockOwnership): Promise<void> {
  const { sb } = volume;
  const journal = hasFeature(sb, "compat", compat.hasJournal) ? sb.journalInode : 0;
  if (journal !== 0) {
    const inode = await volume.inodes.inode(journal, "the journal");
    if (inode !== undefined && !hasInlineData(inode)) ownership.journal(journal, await mapInodeBlocks(inode, volume.mapping));
  }
  if (hasFeature(sb, "compat", compat.resizeInode)) {
    const inode = await volume.inodes.inode(resizeInode, "the resize inode");
    const doubleIndirect = inode === undefined ? 0 : blockArea(inode).readUInt32LE(13 * 4);
    if (doubleIndirect !== 0 && inFilesystem(volume.mapping, doubleIndirect, 1, "the resize inode")) {
      ownership.metadata(doubleIndirect, 1, "resize inode");
    }
  }
  const hidden: Array<[number, string]> = [];
  for (let number = 1; number < sb.firstInode; number++) {
    const what = reservedInodes[number];
    if (what !== undefined) hidden.push([number, what]);
  }
  hidden.push(...sb.hiddenInodes);
  for (const [number, what] of hidden) {
    if (number === rootInode || number === journal || number === resizeInode || ownership.owns(number)) continue;
    const inode = await volume.inodes.inode(number, what);
    if (inode === undefined || inode.blocks === 0 || hasInlineData(inode)) continue;
    ownership.metadataInode(number, await mapInodeBlocks(inode, volume.mapping), what);
  }
}
