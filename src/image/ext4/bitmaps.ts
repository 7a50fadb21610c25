import type { ImageReader } from "./image-reader.js";

/** A bitmap per group, `bitsPerGroup` bits each, packed one after another; a group whose bitmap is unknown is `known: false`. */
export class GroupBitmaps {
  private constructor(
    private readonly bits: Uint8Array,
    private readonly bytesPerGroup: number,
    private readonly known: Uint8Array,
  ) {}

  /** Reads the bitmap block of each group in `locations` (-1: skip); neighbouring blocks are read together, as flex_bg packs them. */
  static async read(reader: ImageReader, locations: readonly number[], bitsPerGroup: number): Promise<GroupBitmaps> {
    const bytesPerGroup = Math.ceil(bitsPerGroup / 8);
    const bits = new Uint8Array(bytesPerGroup * locations.length);
    const known = new Uint8Array(locations.length);
    const order = locations.map((block, group) => ({ block, group })).filter(({ block }) => block >= 0).sort((a, b) => a.block - b.block);
    const maxRun = Math.max(1, Math.floor((4 << 20) / reader.blockSize));
    for (let i = 0; i < order.length;) {
      let j = i + 1;
      while (j < order.length && j - i < maxRun && order[j]!.block <= order[j - 1]!.block + 1) j++;
      const first = order[i]!.block;
      const span = order[j - 1]!.block - first + 1;
      const data = await reader.blocks(first, span);
      for (let k = i; k < j; k++) {
        const { block, group } = order[k]!;
        const at = (block - first) * reader.blockSize;
        bits.set(data.subarray(at, at + bytesPerGroup), group * bytesPerGroup);
        known[group] = 1;
      }
      i = j;
    }
    return new GroupBitmaps(bits, bytesPerGroup, known);
  }

  isKnown(group: number): boolean {
    return this.known[group] === 1;
  }

  isSet(group: number, index: number): boolean {
    const byte = this.bits[group * this.bytesPerGroup + (index >>> 3)] ?? 0;
    return (byte & (1 << (index & 7))) !== 0;
  }
}
