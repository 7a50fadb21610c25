import type { ProblemSink } from "./problem-log.js";

/** A name in a directory and the inode it links to. */
export interface DirectoryEntry {
  inode: number;
  name: string;
}

/** How to read a directory's entries, and where deleted ones are collected (undefined: do not look). */
export interface DirentReading {
  hasFileType: boolean;
  inodesCount: number;
  blockSize: number;
  /** An htree directory: its index nodes are hidden in entries that must not be scanned for deleted names. */
  indexed: boolean;
  live: DirectoryEntry[];
  deleted: DirectoryEntry[] | undefined;
  problems: ProblemSink;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads the entries in `bytes[start, end)`, one directory block (or an inline area). Live entries
 * go to `reading.live` without "." and ".."; names still readable in the slack after an entry
 * (what deletion leaves behind: the previous entry's rec_len grows over the removed one) go to
 * `reading.deleted`. `firstBlock`: the block holding "." and "..", an htree's root.
 */
export function readDirents(bytes: Buffer, start: number, end: number, reading: DirentReading, where: string, firstBlock: boolean): void {
  for (let at = start; at < end;) {
    if (at + 8 > end) {
      reading.problems.note(`${where}: ${end - at} stray bytes at offset ${at - start}`);
      return;
    }
    const inode = bytes.readUInt32LE(at);
    const recordLength = recLen(bytes.readUInt16LE(at + 4), reading.blockSize);
    const nameLength = reading.hasFileType ? (bytes[at + 6] ?? 0) : bytes.readUInt16LE(at + 6);
    if (recordLength < 8 || recordLength % 4 !== 0 || at + recordLength > end || 8 + nameLength > recordLength) {
      reading.problems.note(`${where}: entry at offset ${at - start} has record length ${recordLength} and name length ${nameLength}, rest of the block skipped`);
      return;
    }
    let used = nameLength > 0 ? align4(8 + nameLength) : 8;
    let dotDot = false;
    if (inode !== 0) {
      const name = bytes.toString("utf8", at + 8, at + 8 + nameLength);
      dotDot = name === "..";
      if (inode > reading.inodesCount) reading.problems.note(`${where}: entry "${name}" points at inode ${inode}, past the last inode`);
      else if (nameLength === 0 || name.includes("/") || name.includes("\0")) reading.problems.note(`${where}: entry at offset ${at - start} has an impossible name`);
      else if (name !== "." && !dotDot) reading.live.push({ inode, name });
    } else if (nameLength === 0 && reading.indexed) {
      used = recordLength; // an htree index node (or the checksum tail): not names
    }
    const skip = dotDot && firstBlock && reading.indexed; // the htree root hides in ".."'s slack
    if (reading.deleted !== undefined && used < recordLength && !skip) scanSlack(bytes, at + used, at + recordLength, reading);
    at += recordLength;
  }
}

/** Looks for removed entries in the bytes an entry's rec_len covers beyond its own name. */
function scanSlack(bytes: Buffer, from: number, to: number, reading: DirentReading): void {
  for (let at = from; at + 9 <= to;) {
    const inode = bytes.readUInt32LE(at);
    if (inode >= 1 && inode <= reading.inodesCount) {
      const recordLength = recLen(bytes.readUInt16LE(at + 4), reading.blockSize);
      const nameLength = reading.hasFileType ? (bytes[at + 6] ?? 0) : bytes.readUInt16LE(at + 6);
      const typeOk = !reading.hasFileType || (bytes[at + 7] ?? 0xff) <= 7;
      if (nameLength > 0 && at + 8 + nameLength <= to && typeOk && recordLength % 4 === 0 && recordLength >= 8 + nameLength) {
        const name = plausibleName(bytes.subarray(at + 8, at + 8 + nameLength));
        if (name !== undefined) {
          reading.deleted?.push({ inode, name });
          at += at + recordLength <= to ? recordLength : align4(8 + nameLength);
          continue;
        }
      }
    }
    at += 4;
  }
}

/** A stale name is only believed when it reads as text: valid UTF-8, no control characters, no "/". */
function plausibleName(raw: Buffer): string | undefined {
  for (const byte of raw) if (byte < 0x20 || byte === 0x7f || byte === 0x2f) return undefined;
  let name: string;
  try {
    name = strictUtf8.decode(raw);
  } catch {
    return undefined;
  }
  return name === "." || name === ".." ? undefined : name;
}

/** rec_len as stored: 64 KiB blocks keep the high bits in the low two. */
function recLen(stored: number, blockSize: number): number {
  if (blockSize < 65536) return stored;
  if (stored === 65535 || stored === 0) return blockSize;
  return (stored & 65532) | ((stored & 3) << 16);
}

function align4(value: number): number {
  return (value + 3) & ~3;
}
