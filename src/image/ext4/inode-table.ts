import type { GroupDescriptor } from "./group-descriptors.js";
import type { ImageReader } from "./image-reader.js";
import { parseInode, type Inode } from "./inode.js";
import type { ProblemSink } from "./problem-log.js";
import { incompat, type Superblock } from "./superblock.js";

const defaultBudget = 64 << 20;

/**
 * Inodes by number, read a group's inode table (its in-use part) at a time and kept in a small
 * LRU cache, since a walk reads the inodes of one directory, mostly from one group, together.
 */
export class InodeTables {
  private readonly cache = new Map<number, Buffer>();
  private cachedBytes = 0;
  private readonly bit64: boolean;

  constructor(
    private readonly reader: ImageReader,
    private readonly sb: Superblock,
    private readonly groups: readonly GroupDescriptor[],
    private readonly problems: ProblemSink,
    private readonly budget = defaultBudget,
  ) {
    this.bit64 = (sb.incompat & incompat.bit64) !== 0;
  }

  /** The inode, or undefined (noted as a problem, naming `where`) when its number or its table is unusable. */
  async inode(number: number, where: string): Promise<Inode | undefined> {
    const { sb } = this;
    if (!Number.isInteger(number) || number < 1 || number > sb.inodesCount) {
      this.problems.note(`${where}: inode ${number} does not exist (the filesystem has ${sb.inodesCount})`);
      return undefined;
    }
    const group = Math.floor((number - 1) / sb.inodesPerGroup);
    const index = (number - 1) % sb.inodesPerGroup;
    const descriptor = this.groups[group];
    if (descriptor === undefined || descriptor.inodeTable < 0) {
      this.problems.note(`${where}: inode ${number} is in group ${group}, whose inode table is unreadable`);
      return undefined;
    }
    if (index >= descriptor.usedInodes) {
      this.problems.note(`${where}: inode ${number} is in the never-used part of group ${group}'s inode table`);
      return undefined;
    }
    const table = await this.table(group, descriptor);
    return parseInode(table.subarray(index * sb.inodeSize, (index + 1) * sb.inodeSize), number, this.bit64);
  }

  private async table(group: number, descriptor: GroupDescriptor): Promise<Buffer> {
    const cached = this.cache.get(group);
    if (cached !== undefined) {
      this.cache.delete(group);
      this.cache.set(group, cached);
      return cached;
    }
    const blocks = Math.ceil((descriptor.usedInodes * this.sb.inodeSize) / this.sb.blockSize);
    const table = await this.reader.blocks(descriptor.inodeTable, blocks);
    for (const [oldest, buffer] of this.cache) {
      if (this.cachedBytes + table.length <= this.budget) break;
      this.cache.delete(oldest);
      this.cachedBytes -= buffer.length;
    }
    this.cache.set(group, table);
    this.cachedBytes += table.length;
    return table;
  }
}
