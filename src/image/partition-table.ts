import type { FileHandle } from "node:fs/promises";
import { KilnError } from "../errors.js";

export type FilesystemKind = "ext" | "vfat" | "xfs" | "swap" | "ntfs" | "unknown";

/** A filesystem inside a raw image: the whole file, or one partition of a disk. */
export interface Volume {
  /** Partition number as Linux counts it (1-based, logical MBR partitions from 5); absent for a bare filesystem. */
  index?: number;
  /** Byte offset in the image file. */
  offset: number;
  size: number;
  filesystem: FilesystemKind;
  /** The GPT partition name, when it has one. */
  label?: string;
}

// 64 KiB covers every magic below, the swap signature on 64 KiB-page machines included.
const probeLength = 65536;
const mbrSector = 512;
const extendedTypes = new Set([0x05, 0x0f, 0x85]);

/**
 * The filesystems in a raw image: one at offset 0 for a bare filesystem, else one per partition of
 * a GPT or MBR disk (logical partitions included). Each is identified by its own magic, not by the
 * partition type, which tools set carelessly.
 */
export async function findFilesystems(handle: FileHandle, size: number, name: string): Promise<Volume[]> {
  const head = await readAt(handle, 0, probeLength);
  for (const sectorSize of [512, 4096]) {
    if (ascii(head, sectorSize, 8) === "EFI PART") return gptVolumes(handle, size, name, sectorSize);
  }
  const whole = identify(head);
  if (whole === "ext") return [{ offset: 0, size, filesystem: "ext" }];
  const entries = mbrEntries(head);
  if (entries !== undefined) {
    // A protective MBR whose GPT header is gone: the backup header at the end of the disk may still be there.
    if (entries.some((e) => e.type === 0xee)) return gptVolumes(handle, size, name, 512);
    // A FAT or NTFS boot sector also ends in 0x55AA, and GRUB keeps a FAT boot sector's BPB in the MBR it writes.
    if (whole === undefined || await holdsFilesystem(handle, size, entries)) return mbrVolumes(handle, size, name, entries);
  }
  if (whole !== undefined) return [{ offset: 0, size, filesystem: whole }];
  throw new KilnError("KILN_AUDIT_UNKNOWN_FORMAT", `${name} has no partition table and no filesystem kiln knows`, {
    hint: "kiln reads a directory, a tar/tar.gz/tar.zst archive, a raw ext2/3/4 image or a GPT/MBR disk holding one, and qcow2",
    exitCode: 2,
  });
}

/** The filesystem whose magic `probe` (the first bytes of a volume) carries. */
function identify(probe: Buffer): Exclude<FilesystemKind, "unknown"> | undefined {
  if (probe.length >= 1082 && probe.readUInt16LE(1080) === 0xef53) return "ext";
  if (ascii(probe, 0, 4) === "XFSB") return "xfs";
  if (ascii(probe, 3, 8) === "NTFS    ") return "ntfs";
  const bootSignature = probe[510] === 0x55 && probe[511] === 0xaa;
  if (bootSignature && (ascii(probe, 54, 3) === "FAT" || ascii(probe, 82, 3) === "FAT")) return "vfat";
  for (const pageSize of [4096, 8192, 16384, 65536]) {
    const signature = ascii(probe, pageSize - 10, 10);
    if (signature === "SWAPSPACE2" || signature === "SWAP-SPACE") return "swap";
  }
  return undefined;
}

async function volumeAt(handle: FileHandle, size: number, name: string, partition: Omit<Volume, "filesystem">): Promise<Volume> {
  const end = partition.offset + partition.size;
  if (end > size) {
    const label = partition.label === undefined ? "" : ` "${partition.label}"`;
    throw new KilnError("KILN_AUDIT_TRUNCATED",
      `${name} is truncated: partition ${partition.index ?? "?"}${label} (bytes ${partition.offset}–${end}, ${partition.size} bytes) ` +
      `ends ${end - size} bytes past the end of the file (${size} bytes)`,
      { hint: "the image is incomplete: copy or download it again", exitCode: 2 });
  }
  const probe = await readAt(handle, partition.offset, Math.min(probeLength, partition.size));
  return { ...partition, filesystem: identify(probe) ?? "unknown" };
}

async function gptVolumes(handle: FileHandle, size: number, name: string, sectorSize: number): Promise<Volume[]> {
  const primary = await readGpt(handle, sectorSize, sectorSize);
  let table = primary.table;
  if (table === undefined) {
    // The backup header is where the primary says, or in the last sector when the primary is unreadable.
    const backupAt = primary.backupLba === undefined ? (Math.floor(size / sectorSize) - 1) * sectorSize : primary.backupLba * sectorSize;
    const backup = await readGpt(handle, backupAt, sectorSize);
    if (backup.table === undefined) {
      throw badTable(name, `the GPT header at byte ${sectorSize} ${primary.problem} and the backup at byte ${backupAt} ${backup.problem}`);
    }
    table = backup.table;
  }
  const volumes: Volume[] = [];
  for (let i = 0; i < table.count; i++) {
    const entry = table.entries.subarray(i * table.entrySize, (i + 1) * table.entrySize);
    if (entry.subarray(0, 16).every((b) => b === 0)) continue;
    const first = safeNumber(entry.readBigUInt64LE(32));
    const last = safeNumber(entry.readBigUInt64LE(40));
    if (last < first) throw badTable(name, `GPT partition ${i + 1} ends (sector ${last}) before it starts (sector ${first})`);
    const label = entry.toString("utf16le", 56, 128).replace(/\0[\s\S]*$/, "");
    const partition = { index: i + 1, offset: first * sectorSize, size: (last - first + 1) * sectorSize };
    volumes.push(await volumeAt(handle, size, name, label === "" ? partition : { ...partition, label }));
  }
  return volumes;
}

interface GptTable { entries: Buffer; count: number; entrySize: number }

/** One GPT header and its entries, checked against their CRCs; or what is wrong with them. */
async function readGpt(handle: FileHandle, at: number, sectorSize: number): Promise<{ table?: GptTable; problem: string; backupLba?: number }> {
  if (!Number.isFinite(at)) return { problem: "lies at an impossible sector" };
  const header = await readAt(handle, at, sectorSize);
  if (header.length < 92) return { problem: "lies past the end of the file" };
  if (ascii(header, 0, 8) !== "EFI PART") return { problem: `has no "EFI PART" signature` };
  const backupLba = safeNumber(header.readBigUInt64LE(32));
  const headerSize = header.readUInt32LE(12);
  if (headerSize < 92 || headerSize > sectorSize) return { problem: `has an impossible header size (${headerSize})`, backupLba };
  const zeroedCrc = Buffer.concat([header.subarray(0, 16), Buffer.alloc(4), header.subarray(20, headerSize)]);
  if (crc32(zeroedCrc) !== header.readUInt32LE(16)) return { problem: "fails its CRC check", backupLba };
  const entriesAt = safeNumber(header.readBigUInt64LE(72)) * sectorSize;
  const count = header.readUInt32LE(80);
  const entrySize = header.readUInt32LE(84);
  if (entrySize < 128 || count * entrySize > 16 * 1024 * 1024) return { problem: `describes ${count} entries of ${entrySize} bytes`, backupLba };
  if (!Number.isFinite(entriesAt)) return { problem: "points to partition entries at an impossible sector", backupLba };
  const entries = await readAt(handle, entriesAt, count * entrySize);
  if (entries.length < count * entrySize) return { problem: `points to partition entries past the end of the file (byte ${entriesAt})`, backupLba };
  if (crc32(entries) !== header.readUInt32LE(88)) return { problem: "has partition entries that fail their CRC check", backupLba };
  return { table: { entries, count, entrySize }, problem: "", backupLba };
}

interface MbrEntry { type: number; start: number; sectors: number }

/** The four entries of an MBR sector, or undefined when it is not a partition table or has no partition in it. */
function mbrEntries(sector: Buffer): MbrEntry[] | undefined {
  if (!hasBootSignature(sector)) return undefined;
  const slots = [0, 1, 2, 3].map((slot) => 446 + 16 * slot);
  // Real entries are marked bootable (0x80) or not (0x00); boot code of a filesystem's boot sector rarely is.
  if (slots.some((at) => sector[at] !== 0x00 && sector[at] !== 0x80)) return undefined;
  const entries = [0, 1, 2, 3].map((slot) => entryAt(sector, slot));
  return entries.some(isUsed) ? entries : undefined;
}

function entryAt(sector: Buffer, slot: number): MbrEntry {
  const at = 446 + 16 * slot;
  return { type: sector[at + 4] ?? 0, start: sector.readUInt32LE(at + 8), sectors: sector.readUInt32LE(at + 12) };
}

const isUsed = (entry: MbrEntry): boolean => entry.type !== 0 && entry.sectors !== 0;

const hasBootSignature = (sector: Buffer): boolean => sector.length >= mbrSector && sector[510] === 0x55 && sector[511] === 0xaa;

async function mbrVolumes(handle: FileHandle, size: number, name: string, entries: MbrEntry[]): Promise<Volume[]> {
  const volumes: Volume[] = [];
  const extended: Volume[] = [];
  for (const [slot, entry] of entries.entries()) {
    if (!isUsed(entry)) continue;
    const volume = await volumeAt(handle, size, name, { index: slot + 1, offset: entry.start * mbrSector, size: entry.sectors * mbrSector });
    (extendedTypes.has(entry.type) ? extended : volumes).push(volume);
  }
  let index = 5;
  for (const container of extended) {
    for (const logical of await logicalPartitions(handle, name, container)) {
      volumes.push(await volumeAt(handle, size, name, { index: index++, ...logical }));
    }
  }
  return volumes;
}

/** The logical partitions of an extended partition, following its chain of extended boot records. */
async function logicalPartitions(handle: FileHandle, name: string, container: Volume): Promise<{ offset: number; size: number }[]> {
  const partitions: { offset: number; size: number }[] = [];
  const seen = new Set<number>();
  for (let at = container.offset; ;) {
    if (seen.has(at) || seen.size > 1024) throw badTable(name, `the chain of logical partitions in partition ${container.index} loops at byte ${at}`);
    seen.add(at);
    const record = await readAt(handle, at, mbrSector);
    if (!hasBootSignature(record)) {
      // An extended partition with no logical partitions in it may start with a zeroed sector.
      if (at === container.offset && record.every((b) => b === 0)) return partitions;
      throw badTable(name, `the extended boot record at byte ${at} (in partition ${container.index}) has no 0x55AA signature`);
    }
    const logical = entryAt(record, 0);
    const next = entryAt(record, 1);
    if (isUsed(logical)) partitions.push({ offset: at + logical.start * mbrSector, size: logical.sectors * mbrSector });
    if (!isUsed(next)) return partitions;
    // Each link is relative to the start of the extended partition, each logical partition to its own record.
    at = container.offset + next.start * mbrSector;
  }
}

/** Whether an MBR's first data partition holds a filesystem kiln recognises: then it is a disk, not a boot sector. */
async function holdsFilesystem(handle: FileHandle, size: number, entries: MbrEntry[]): Promise<boolean> {
  const first = entries.find((e) => isUsed(e) && !extendedTypes.has(e.type));
  if (first === undefined || first.start === 0 || (first.start + first.sectors) * mbrSector > size) return false;
  return identify(await readAt(handle, first.start * mbrSector, Math.min(probeLength, first.sectors * mbrSector))) !== undefined;
}

function badTable(name: string, what: string): KilnError {
  return new KilnError("KILN_AUDIT_BAD_PARTITION_TABLE", `${name} has a damaged partition table: ${what}`, {
    hint: "check it with `sfdisk --verify` or `gdisk`, or copy the image again if it was damaged in transfer",
    exitCode: 2,
  });
}

/** Up to `length` bytes at `position`; fewer at the end of the file. */
async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

function ascii(buffer: Buffer, at: number, length: number): string {
  return buffer.toString("latin1", at, at + length);
}

// Sector numbers beyond 2^53 only come from garbage; Infinity makes every range check fail safely.
function safeNumber(value: bigint): number {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : Infinity;
}

// zlib.crc32 only exists from Node 20.15; kiln supports every Node 20.
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = (crcTable[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
