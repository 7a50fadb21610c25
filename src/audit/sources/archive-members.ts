import { inflateRawSync } from "node:zlib";
import { compressionOf } from "./decompress.js";

/** Archives whose members a file scan must open: their compressed members are blind to a scan of the archive's bytes. */
export type Container = "zip" | "ar" | "tar";

/** Bytes needed to tell a container by its first bytes (tar's magic is at 257). */
export const containerHeadBytes = 512;

export function containerOf(head: Buffer): Container | undefined {
  if (head.length >= 4 && head.readUInt32LE(0) === zipLocal) return "zip";
  if (head.toString("latin1", 0, 8) === "!<arch>\n") return "ar";
  if (head.length >= 262 && head.toString("latin1", 257, 262) === "ustar") return "tar";
  return undefined;
}

/** An archive's bytes, read where asked: a tar is walked by its headers, not read whole. */
export interface ArchiveBytes {
  readonly length: number;
  at(offset: number, length: number): Promise<Buffer>;
}

export function inMemory(bytes: Buffer): ArchiveBytes {
  return { length: bytes.length, at: (offset, length) => Promise.resolve(bytes.subarray(offset, offset + length)) };
}

/** A member worth scanning on its own (compressed, deflated, or itself a container), or why one could not be read. */
export type Member = { name: string; data: Buffer } | { name: string; problem: string; cut?: boolean };

const zipLocal = 0x04034b50;

/**
 * The members of an archive that a scan of its bytes cannot see into: those compressed (a
 * .tar.xz in a .deb, a .tgz in a tar) or archives themselves, and zip members deflated. A stored,
 * plain member is already in the archive's bytes. Every zip local header is tried, wherever it
 * is, so a member the central directory leaves out is read too. `limit`: inflated bytes at most.
 */
export async function* membersOf(kind: Container, archive: ArchiveBytes, limit: number): AsyncIterable<Member> {
  const wanted = (data: Buffer): boolean => compressionOf(data.subarray(0, 8)) !== undefined || containerOf(data.subarray(0, containerHeadBytes)) !== undefined;
  if (kind === "tar") {
    for (let at = 0; at + 512 <= archive.length;) {
      const header = await archive.at(at, 512);
      if (header.every((b) => b === 0)) { at += 512; continue; }
      const name = header.toString("utf8", 0, 100).replace(/\0.*$/s, "");
      const size = tarSize(header.subarray(124, 136));
      if (size === undefined) return;
      // Only a member that starts like a compressed stream or an archive is read whole.
      if (size > 0 && wanted(await archive.at(at + 512, Math.min(size, containerHeadBytes)))) yield { name, data: await archive.at(at + 512, size) };
      at += 512 + Math.ceil(size / 512) * 512;
    }
    return;
  }
  const bytes = await archive.at(0, archive.length);
  if (kind === "zip") {
    for (let at = bytes.indexOf("PK\x03\x04", 0, "latin1"); at >= 0 && at + 30 <= bytes.length; at = bytes.indexOf("PK\x03\x04", at + 4, "latin1")) {
      const method = bytes.readUInt16LE(at + 8);
      const size = bytes.readUInt32LE(at + 18);
      const nameLength = bytes.readUInt16LE(at + 26);
      const start = at + 30 + nameLength + bytes.readUInt16LE(at + 28);
      const name = bytes.toString("utf8", at + 30, Math.min(at + 30 + nameLength, bytes.length));
      // With a data descriptor (flag 8) the size may be 0 here: deflate ends by itself.
      const data = bytes.subarray(start, size === 0 || start + size > bytes.length ? bytes.length : start + size);
      if (method === 0) {
        if (wanted(data)) yield { name, data };
      } else if (method === 8) {
        try {
          yield { name, data: inflateRawSync(data, { maxOutputLength: limit }) };
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === "ERR_BUFFER_TOO_LARGE") yield { name, problem: `its deflated data goes on past ${limit} bytes; the rest was not scanned`, cut: true };
          // A "PK\3\4" inside other data is not a member; a real one that fails to inflate is damage.
          else if (size > 0 && start + size <= bytes.length && nameLength > 0) yield { name, problem: `its deflated data is corrupt (${code ?? String(error)})` };
        }
      } else if (size > 0) {
        yield { name, problem: `zip compression method ${method} is not read by kiln` };
      }
    }
    return;
  }
  if (kind === "ar") {
    for (let at = 8; at + 60 <= bytes.length;) {
      const name = bytes.toString("latin1", at, at + 16).trim().replace(/\/$/, "");
      const size = Number(bytes.toString("latin1", at + 48, at + 58).trim());
      if (!Number.isSafeInteger(size) || size < 0) return;
      const data = bytes.subarray(at + 60, at + 60 + size);
      if (wanted(data)) yield { name, data };
      at += 60 + size + (size % 2);
    }
    return;
  }
}

/** A tar size field: octal digits, or base-256 when its first byte has the high bit set. */
function tarSize(field: Buffer): number | undefined {
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + (field[i] ?? 0);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  const text = field.toString("latin1").replace(/[\0 ]+$/, "").trim();
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : text === "" ? 0 : undefined;
}
