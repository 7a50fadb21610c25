import { KilnError } from "../errors.js";
import { sha256Text } from "../system/sha256.js";

export type Firmware = "bios" | "uefi";

/** One GPT partition, in bytes from the start of the disk. */
export interface DiskPartition {
  /** 1-based, as Linux names it (vda3). */
  number: number;
  name: "bios-boot" | "esp" | "root";
  /** Partition type GUID. */
  type: string;
  /** Unique partition GUID: the kernel's root=PARTUUID=. */
  guid: string;
  offset: number;
  bytes: number;
}

export interface DiskLayout {
  bytes: number;
  diskGuid: string;
  partitions: DiskPartition[];
  root: DiskPartition;
  biosBoot?: DiskPartition;
  esp?: DiskPartition;
}

const mib = 1024 * 1024;
export const sectorBytes = 512;

/**
 * Partition types: GRUB's BIOS boot partition, the EFI system partition, and the Discoverable
 * Partitions Specification's x86-64 root (systemd-repart and systemd-gpt-auto know it by it).
 */
export const partitionTypes = {
  "bios-boot": "21686148-6449-6E6F-744E-656564454649",
  esp: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
  root: "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
} as const;

/** GRUB's core image for BIOS is about 150 KiB; a MiB leaves room for more modules. */
const biosBootBytes = mib;
/**
 * FAT32 needs 65,525 clusters: 64 MiB of 512-byte clusters has 130,000. FAT32 is what the UEFI
 * specification asks of an ESP on a fixed disk; some firmware refuses FAT16 there.
 */
export const espBytes = 64 * mib;
/** Partitions start at 1 MiB; the last MiB holds the backup GPT (33 sectors) and alignment. */
const headBytes = mib;
const tailBytes = mib;

/**
 * A GPT disk: BIOS boot (when BIOS boots it), ESP (when UEFI does), then root last so it can
 * grow into a disk made larger. Everything is in whole MiB (Azure requires it of a VHD), and every
 * GUID comes from `seed`, so the same inputs give the same disk.
 */
export function gptLayout({ rootBytes, diskBytes, boot, seed }: { rootBytes?: number; diskBytes?: number; boot: readonly Firmware[]; seed: string }): DiskLayout {
  const partitions: DiskPartition[] = [];
  let offset = headBytes;
  const add = (name: DiskPartition["name"], bytes: number): DiskPartition => {
    const partition = { number: partitions.length + 1, name, type: partitionTypes[name], guid: derivedGuid(seed, name), offset, bytes };
    partitions.push(partition);
    offset += bytes;
    return partition;
  };
  const biosBoot = boot.includes("bios") ? add("bios-boot", biosBootBytes) : undefined;
  const esp = boot.includes("uefi") ? add("esp", espBytes) : undefined;
  const overhead = offset + tailBytes;
  let root: number;
  if (diskBytes !== undefined) {
    root = Math.floor((diskBytes - overhead) / mib) * mib;
    if (root < 8 * mib) {
      throw new KilnError("KILN_SIZE", `a ${Math.round(diskBytes / mib)} MiB disk leaves no room for the root filesystem after ${overhead / mib} MiB of partition table and boot partitions`, { hint: "set image.size larger, or auto", exitCode: 2 });
    }
  } else {
    root = Math.ceil((rootBytes ?? 0) / mib) * mib;
  }
  const rootPartition = add("root", root);
  return {
    bytes: offset + tailBytes,
    diskGuid: derivedGuid(seed, "disk"),
    partitions,
    root: rootPartition,
    ...(biosBoot === undefined ? {} : { biosBoot }),
    ...(esp === undefined ? {} : { esp }),
  };
}

/** The partition table as sfdisk reads it from its standard input. */
export function sfdiskScript(layout: DiskLayout): string {
  const lines = ["label: gpt", `label-id: ${layout.diskGuid}`, "unit: sectors", `first-lba: ${headBytes / sectorBytes}`];
  for (const p of layout.partitions) {
    lines.push(`start=${p.offset / sectorBytes}, size=${p.bytes / sectorBytes}, type=${p.type}, uuid=${p.guid}, name="${p.name}"`);
  }
  return `${lines.join("\n")}\n`;
}

/** A random-looking (version 4 form) GUID that is the same for the same seed and name. */
export function derivedGuid(seed: string, name: string): string {
  const hex = sha256Text(`kiln-disk\0${seed}\0${name}`).slice(0, 32).split("");
  hex[12] = "4";
  hex[16] = ((parseInt(hex[16] ?? "0", 16) & 0x3) | 0x8).toString(16);
  const h = hex.join("").toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
