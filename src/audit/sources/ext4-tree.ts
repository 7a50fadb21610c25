import type { Ext4File, Ext4Filesystem } from "../../image/ext4/ext4-filesystem.js";
import type { ImageTree, TreeFile } from "./image-tree.js";

/** The live files of an ext2/3/4 filesystem inside an image, read without mounting it. */
export class Ext4Tree implements ImageTree {
  readonly description: string;

  /** `onFile` sees each walked file with its extents, for callers that map raw bytes back to it. */
  constructor(private readonly filesystem: Ext4Filesystem, image: string, private readonly onFile?: (file: Ext4File) => void) {
    const where = filesystem.offset === 0 ? "" : ` at byte ${filesystem.offset}`;
    this.description = `ext4 filesystem in ${image}${where}`;
  }

  async *entries(signal?: AbortSignal): AsyncIterable<TreeFile> {
    for await (const file of this.filesystem.walk(signal)) {
      this.onFile?.(file);
      yield { entry: file.entry, read: () => this.filesystem.read(file) };
    }
  }
}
