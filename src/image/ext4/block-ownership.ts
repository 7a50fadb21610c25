import { BlockOwnerRuns, type BlockOwnerIndex } from "./block-owners.js";
import type { BlockMapping } from "./data-runs.js";
import type { BlockOwner } from "./ext4-filesystem.js";
import type { ProblemSink } from "./problem-log.js";

/** Who owns which blocks, gathered while the filesystem is walked: metadata first, then the journal, then files. */
export class BlockOwnership {
  private readonly owners: BlockOwner[] = [];
  private readonly runs = new BlockOwnerRuns();
  private readonly metadataIds = new Map<string, number>();
  private readonly ownerByInode = new Map<number, number>();
  private readonly xattrBlocks = new Set<number>();
  private journalId = -1;

  metadata(start: number, count: number, what: string): void {
    this.runs.add(start, count, this.metadataId(what));
  }

  /** A hidden inode that holds filesystem data (quota, bad blocks list): its blocks are metadata. */
  metadataInode(inode: number, mapping: BlockMapping, what: string): void {
    if (this.ownerByInode.has(inode)) return;
    const id = this.metadataId(what);
    this.ownerByInode.set(inode, id);
    this.addMapping(mapping, id);
  }

  journal(inode: number, mapping: BlockMapping): void {
    if (this.journalId < 0) this.journalId = this.owners.push({ kind: "journal" }) - 1;
    this.ownerByInode.set(inode, this.journalId);
    this.addMapping(mapping, this.journalId);
  }

  owns(inode: number): boolean {
    return this.ownerByInode.has(inode);
  }

  /** Records a live inode's data, map and xattr blocks under its first path; later hard links change nothing. */
  file(inode: number, path: string, mapping: BlockMapping, xattrBlock: number): void {
    if (this.ownerByInode.has(inode)) return;
    const id = this.owners.push({ kind: "file", inode, path }) - 1;
    this.ownerByInode.set(inode, id);
    this.addMapping(mapping, id);
    if (xattrBlock !== 0 && !this.xattrBlocks.has(xattrBlock)) {
      this.xattrBlocks.add(xattrBlock);
      this.runs.add(xattrBlock, 1, id);
    }
  }

  private metadataId(what: string): number {
    let id = this.metadataIds.get(what);
    if (id === undefined) {
      id = this.owners.push({ kind: "metadata", what }) - 1;
      this.metadataIds.set(what, id);
    }
    return id;
  }

  private addMapping(mapping: BlockMapping, id: number): void {
    for (const run of mapping.runs) this.runs.add(run.physicalBlock, run.blocks, id);
    for (const block of mapping.mapBlocks) this.runs.add(block, 1, id);
  }

  pathOf(inode: number): string | undefined {
    const id = this.ownerByInode.get(inode);
    const owner = id === undefined ? undefined : this.owners[id];
    return owner?.kind === "file" ? owner.path : undefined;
  }

  /** The sorted index, and the owner each of its ids stands for. */
  build(problems: ProblemSink): { index: BlockOwnerIndex; owners: readonly BlockOwner[] } {
    const describe = (id: number): string => {
      const owner = this.owners[id];
      if (owner === undefined) return "nothing";
      if (owner.kind === "file") return owner.path;
      return owner.kind === "metadata" ? owner.what : owner.kind;
    };
    return { index: this.runs.index(problems, describe), owners: this.owners };
  }
}
