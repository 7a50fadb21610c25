import type { Ext4File, Ext4Filesystem } from "../image/ext4/ext4-filesystem.js";
import type { Volume } from "../image/partition-table.js";
import type { PackageFiles } from "./package-files.js";
import type { Finding } from "./finding.js";
import type { ScannedFile } from "./tree-audit.js";

/** An ext filesystem of the image, walked, with its regular files by inode. */
export interface WalkedFilesystem {
  volume: Volume;
  fs: Ext4Filesystem;
  files: Map<number, Ext4File>;
}

/** The same, with what its walk learned: dpkg's checksums, and how file scans become findings. */
export interface Walked extends WalkedFilesystem {
  judge: (scanned: ScannedFile[]) => Finding[];
  packages: PackageFiles;
}

/** The live regular file whose bytes (data, or inline data in its inode) hold this offset. */
export function ownerFile(w: WalkedFilesystem, offset: number): Ext4File | undefined {
  const inFs = offset - w.volume.offset;
  const owner = w.fs.ownerOf(Math.floor(inFs / w.fs.blockSize));
  if (owner.kind === "file") return w.files.get(owner.inode);
  if (owner.kind === "metadata" && owner.what === "inode table") {
    const inode = w.fs.inodeAtByte(inFs);
    return inode === undefined ? undefined : w.files.get(inode);
  }
  return undefined;
}
