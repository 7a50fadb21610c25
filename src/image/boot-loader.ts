import { open, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { KilnError } from "../errors.js";
import { exec } from "../system/exec.js";
import type { DiskLayout } from "./disk-layout.js";
import { sectorBytes } from "./disk-layout.js";

/** The kernel GRUB loads, as paths inside the root filesystem. */
export interface BootKernel {
  version: string;
  kernel: string;
  initrd?: string | undefined;
}

export interface BootEntry {
  kernel: BootKernel;
  rootFilesystemUuid: string;
  rootPartitionGuid: string;
  kernelArgs: readonly string[];
}

/** Where this machine's GRUB keeps its images and modules (grub-pc-bin, grub-efi-amd64-bin). */
export const grubDirectories = { bios: "/usr/lib/grub/i386-pc", uefi: "/usr/lib/grub/x86_64-efi" } as const;

/**
 * The kernel command line: root by PARTUUID, which the kernel resolves itself (root=UUID= needs
 * an initramfs), read-only until fstab remounts it, and the kernel's messages on both the serial
 * port (clouds' console logs, `kiln test`) and the screen; the last console is /dev/console.
 */
export function kernelCommandLine(entry: Pick<BootEntry, "rootPartitionGuid" | "kernelArgs">): string {
  return [`root=PARTUUID=${entry.rootPartitionGuid.toLowerCase()}`, "ro", "console=tty0", "console=ttyS0,115200n8", ...entry.kernelArgs].join(" ");
}

/**
 * GRUB's configuration, embedded in its core image (nothing is read from /boot/grub): menu on
 * the serial port and the screen, the root filesystem found by its UUID, one kernel. Run by
 * GRUB's rescue parser, so plain commands only.
 */
export function grubConfig(entry: BootEntry): string {
  const lines = [
    "set timeout=0",
    "serial --unit=0 --speed=115200",
    "terminal_input serial console",
    "terminal_output serial console",
    `echo kiln: loading Linux ${entry.kernel.version}`,
    `search --no-floppy --fs-uuid --set=root ${entry.rootFilesystemUuid}`,
    `linux ${entry.kernel.kernel} ${kernelCommandLine(entry)}`,
  ];
  if (entry.kernel.initrd !== undefined) lines.push(`initrd ${entry.kernel.initrd}`);
  lines.push("boot");
  return `${lines.join("\n")}\n`;
}

const commonModules = ["part_gpt", "part_msdos", "ext2", "search", "search_fs_uuid", "linux", "serial", "terminal", "echo", "boot", "gzio"];
const modules = { bios: ["biosdisk", ...commonModules], uefi: [...commonModules, "efi_gop", "all_video"] } as const;

/**
 * GRUB's core image for one firmware, with the configuration inside: for BIOS it goes into the
 * BIOS boot partition, for UEFI it is the removable-media path's BOOTX64.EFI. `grub-mkimage`
 * writes the same bytes for the same input.
 */
export async function grubImage(firmware: "bios" | "uefi", config: string, scratch: string, signal: AbortSignal): Promise<Buffer> {
  const configFile = join(scratch, `grub-${firmware}.cfg`);
  const output = join(scratch, firmware === "bios" ? "core.img" : "BOOTX64.EFI");
  await writeFile(configFile, config);
  await exec("grub-mkimage", [
    "-O", firmware === "bios" ? "i386-pc" : "x86_64-efi", "-d", grubDirectories[firmware], "-o", output, "-c", configFile, "-p", "/boot/grub", ...modules[firmware],
  ], { what: `making GRUB's ${firmware === "bios" ? "BIOS core image" : "EFI image"} (grub-mkimage)`, signal });
  return readFile(output);
}

// Offsets in GRUB's boot.img (include/grub/i386/pc/boot.h).
const kernelSectorOffset = 0x5c;
const driveCheckOffset = 0x66;
/** The MBR's boot code ends here: the partition table (the GPT's protective entry) follows. */
const mbrCodeBytes = 440;
/** The segment the second sector of core.img is loaded to; each next sector 0x20 further. */
const coreSecondSegment = 0x820;

/**
 * What grub-bios-setup would write, for a disk in a file (it only works on block devices): the
 * MBR's boot code pointing at core.img's first sector, and the block list at the end of that
 * sector (diskboot.img) naming where the rest of core.img lies. The drive check becomes two
 * NOPs, as grub-bios-setup does for hard disks (BIOSes that pass a wrong boot drive).
 */
export function biosBootSectors(bootImage: Buffer, core: Buffer, coreLba: number): { mbrCode: Buffer; core: Buffer } {
  if (bootImage.length !== sectorBytes || bootImage.readUInt16LE(510) !== 0xaa55) {
    throw new KilnError("KILN_GRUB", "GRUB's boot.img is not a 512-byte boot sector", { hint: "reinstall grub-pc-bin" });
  }
  const mbr = Buffer.from(bootImage.subarray(0, mbrCodeBytes));
  mbr.writeBigUInt64LE(BigInt(coreLba), kernelSectorOffset);
  mbr[driveCheckOffset] = 0x90;
  mbr[driveCheckOffset + 1] = 0x90;
  const sectors = Math.ceil(core.length / sectorBytes);
  const patched = Buffer.alloc(sectors * sectorBytes);
  core.copy(patched);
  // One block list entry (start, length, segment) ending the first sector: the rest is contiguous.
  const entry = sectorBytes - 12;
  patched.writeBigUInt64LE(BigInt(coreLba + 1), entry);
  patched.writeUInt16LE(sectors - 1, entry + 8);
  patched.writeUInt16LE(coreSecondSegment, entry + 10);
  return { mbrCode: mbr, core: patched };
}

/** Writes GRUB for BIOS into a disk file: boot code into the MBR, core.img into the BIOS boot partition. */
export async function installBiosGrub(disk: string, layout: DiskLayout, core: Buffer): Promise<void> {
  const partition = layout.biosBoot;
  if (partition === undefined) throw new Error("a BIOS-booted disk needs a BIOS boot partition");
  if (core.length > partition.bytes) {
    throw new KilnError("KILN_GRUB", `GRUB's core image (${core.length} bytes) does not fit the ${partition.bytes}-byte BIOS boot partition`);
  }
  const bootImage = await readFile(join(grubDirectories.bios, "boot.img"));
  const sectors = biosBootSectors(bootImage, core, partition.offset / sectorBytes);
  const handle = await open(disk, "r+");
  try {
    await handle.write(sectors.mbrCode, 0, sectors.mbrCode.length, 0);
    await handle.write(sectors.core, 0, sectors.core.length, partition.offset);
  } finally {
    await handle.close();
  }
}

/**
 * Makes the EFI system partition inside the disk file, without mounting: a FAT32 filesystem
 * written at the partition's offset (mkfs.fat with constant ids and times), GRUB's EFI image
 * copied in as EFI/BOOT/BOOTX64.EFI (the path firmware boots with no boot entries) by mtools.
 */
export async function writeEsp(disk: string, layout: DiskLayout, efiImage: Buffer, { volumeId, epoch, scratch, signal }: { volumeId: string; epoch: number; scratch: string; signal: AbortSignal }): Promise<void> {
  const esp = layout.esp;
  if (esp === undefined) throw new Error("a UEFI-booted disk needs an EFI system partition");
  // -h: the partition's start as the BPB's hidden sectors, which mkfs.fat sets itself only on a partition device.
  await exec("mkfs.fat", ["-F", "32", "-s", "1", "--invariant", "-i", volumeId, "-n", "EFI", "-h", String(esp.offset / sectorBytes), `--offset=${esp.offset / sectorBytes}`, disk, String(esp.bytes / 1024)], {
    what: "making the EFI system partition's FAT filesystem (mkfs.fat)", signal,
  });
  const source = join(scratch, "BOOTX64.EFI");
  await writeFile(source, efiImage);
  await utimes(source, epoch, epoch);
  // mtools stamps directories with SOURCE_DATE_EPOCH and files with their own time (-m).
  const env = { ...process.env, SOURCE_DATE_EPOCH: String(epoch), MTOOLS_SKIP_CHECK: "1", MTOOLSRC: "/dev/null" };
  // mtools splits `FILE@@OFFSET` at the first @@: through the open descriptor, an @@ in the
  // output directory's name cannot make it write another file.
  const handle = await open(disk, "r+");
  try {
    const image = `/proc/self/fd/3@@${esp.offset}`;
    await exec("mmd", ["-i", image, "::/EFI", "::/EFI/BOOT"], { what: "making the ESP's directories (mmd)", signal, env, extraFds: [handle.fd] });
    await exec("mcopy", ["-m", "-i", image, source, "::/EFI/BOOT/BOOTX64.EFI"], { what: "copying GRUB into the ESP (mcopy)", signal, env, extraFds: [handle.fd] });
  } finally {
    await handle.close();
  }
  await rm(source, { force: true });
}
