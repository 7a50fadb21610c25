import { posix } from "node:path";

/** Tar's 512-byte records: headers and the padding after each entry's data. */
export const blockSize = 512;

export function padding(size: number): number {
  return (blockSize - (size % blockSize)) % blockSize;
}

/** "./etc/shadow", "etc/shadow/", "/../etc/shadow" all become "/etc/shadow": nothing escapes the image. */
export function inImage(name: string): string {
  const path = posix.normalize(`/${name}`);
  return path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
}

export function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.toString("utf8", 0, end === -1 ? field.length : end);
}

/** Octal, space or NUL terminated; or GNU base-256 when the high bit of the first byte is set. */
export function numeric(field: Buffer): number | undefined {
  const lead = field[0] ?? 0;
  if (lead & 0x80) {
    if (lead === 0xff) return undefined; // negative: no size, mode or owner is
    let value = lead & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return Number.isSafeInteger(value) ? value : undefined;
  }
  const digits = field.toString("latin1").replace(/^[ \0]+|[ \0]+$/g, "");
  if (digits === "") return 0;
  return /^[0-7]+$/.test(digits) ? parseInt(digits, 8) : undefined;
}

export function checksumMatches(header: Buffer): boolean {
  const stored = numeric(header.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < blockSize; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  // Some old tars summed signed bytes; GNU tar accepts both.
  return stored === unsigned || stored === signed;
}

/** pax "%d %s=%s\n" records; undefined when malformed. */
export function paxRecords(data: Buffer): Map<string, string> | undefined {
  const records = new Map<string, string>();
  let at = 0;
  while (at < data.length && data[at] !== 0) {
    const space = data.indexOf(0x20, at);
    const length = space === -1 ? NaN : Number(data.toString("latin1", at, space));
    if (!Number.isInteger(length) || length <= space - at + 1 || at + length > data.length || data[at + length - 1] !== 0x0a) return undefined;
    const record = data.subarray(space + 1, at + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals === -1) return undefined;
    records.set(record.toString("utf8", 0, equals), record.toString("utf8", equals + 1));
    at += length;
  }
  return records;
}
