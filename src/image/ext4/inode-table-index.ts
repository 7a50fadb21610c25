import type { GroupDescriptor } from "./group-descriptors.js";
import type { Superblock } from "./superblock.js";
import { lastAtOrBefore } from "./sorted-search.js";

/** Finds which inode record a byte of an inode table belongs to, by binary search over the tables' positions. */
export class InodeTableIndex {
  private readonly starts: Float64Array;
  private readonly groupOf: Uint32Array;
  private readonly tableBytes: number;

  constructor(private readonly sb: Superblock, groups: readonly GroupDescriptor[]) {
    const order = groups.map((g, group) => ({ start: g.inodeTable * sb.blockSize, group }))
      .filter((_, group) => groups[group]!.inodeTable >= 0)
      .sort((a, b) => a.start - b.start);
    this.starts = Float64Array.from(order, (o) => o.start);
    this.groupOf = Uint32Array.from(order, (o) => o.group);
    this.tableBytes = sb.inodesPerGroup * sb.inodeSize;
  }

  /** The record holding `byteInFilesystem`: its inode, where it starts (in the filesystem) and its size. */
  recordAt(byteInFilesystem: number): { inode: number; start: number; size: number } | undefined {
    const inode = this.inodeAt(byteInFilesystem);
    if (inode === undefined) return undefined;
    const found = lastAtOrBefore(this.starts, byteInFilesystem);
    const within = byteInFilesystem - this.starts[found]!;
    return { inode, start: byteInFilesystem - (within % this.sb.inodeSize), size: this.sb.inodeSize };
  }

  /** The inode whose record holds `byteInFilesystem`, or undefined outside every inode table. */
  inodeAt(byteInFilesystem: number): number | undefined {
    const found = lastAtOrBefore(this.starts, byteInFilesystem);
    if (found < 0) return undefined;
    const within = byteInFilesystem - this.starts[found]!;
    if (within >= this.tableBytes) return undefined;
    const inode = this.groupOf[found]! * this.sb.inodesPerGroup + Math.floor(within / this.sb.inodeSize) + 1;
    return inode <= this.sb.inodesCount ? inode : undefined;
  }
}
