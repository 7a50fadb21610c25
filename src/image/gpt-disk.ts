import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exec } from "../system/exec.js";
import { grubConfig, grubImage, installBiosGrub, writeEsp, type BootKernel } from "./boot-loader.js";
import type { DiskLayout } from "./disk-layout.js";
import { sfdiskScript } from "./disk-layout.js";
import { writeExt4Image, type Ext4ImageOptions } from "./ext4-image.js";

export interface GptDiskOptions {
  /** Must not exist yet. */
  file: string;
  layout: DiskLayout;
  /** The root filesystem, written fresh into the root partition. */
  root: Omit<Ext4ImageOptions, "file" | "offset" | "bytes">;
  /** Absent: a partitioned disk nothing boots. */
  kernel?: BootKernel | undefined;
  kernelArgs: readonly string[];
}

/**
 * A GPT disk in a new file, with no loop device and no mount: the partition table by sfdisk, the
 * root filesystem by mke2fs at its partition's offset, the ESP by mkfs.fat and mtools at its
 * offset, GRUB's BIOS core image into the BIOS boot partition. Every byte not written is a hole.
 */
export async function writeGptDisk(options: GptDiskOptions): Promise<void> {
  const { file, layout, root } = options;
  const handle = await open(file, "wx", 0o644);
  try {
    await handle.truncate(layout.bytes);
  } finally {
    await handle.close();
  }
  await exec("sfdisk", ["--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "never", file], {
    what: "writing the partition table (sfdisk)", signal: root.signal, stdin: sfdiskScript(layout),
  });
  await writeExt4Image({ ...root, file, offset: layout.root.offset, bytes: layout.root.bytes });
  if (options.kernel === undefined) return;
  const scratch = await mkdtemp(join(tmpdir(), "kiln-boot-"));
  try {
    const config = grubConfig({ kernel: options.kernel, rootFilesystemUuid: root.uuid, rootPartitionGuid: layout.root.guid, kernelArgs: options.kernelArgs });
    if (layout.esp !== undefined) {
      const efi = await grubImage("uefi", config, scratch, root.signal);
      await writeEsp(file, layout, efi, { volumeId: layout.diskGuid.replace(/-/g, "").slice(0, 8), epoch: root.epoch, scratch, signal: root.signal });
    }
    if (layout.biosBoot !== undefined) await installBiosGrub(file, layout, await grubImage("bios", config, scratch, root.signal));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
