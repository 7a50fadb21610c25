import { createReadStream } from "node:fs";
import { KilnError } from "../../errors.js";
import type { ImageTree, TreeEntry, TreeFile } from "./image-tree.js";
import { ArchiveBytes, truncated } from "./archive-bytes.js";
import { type Compression, compressionOf, decompressed } from "./decompress.js";
import { blockSize, checksumMatches, cString, inImage, numeric, padding, paxRecords } from "./tar-fields.js";

// GNU long names and pax headers are read whole; real ones are a few hundred bytes.
const metaLimit = 1024 * 1024;

/**
 * A tar archive (ustar, GNU or pax; plain, gzip, zstd, xz or bzip2 compressed), streamed from disk and
 * never held whole in memory. An entry's content is readable until the next entry is asked for.
 */
export class TarTree implements ImageTree {
  readonly description: string;

  constructor(private readonly archive: string) {
    this.description = `tar archive ${archive}`;
  }

  async *entries(signal?: AbortSignal): AsyncGenerator<TreeFile, void, undefined> {
    const file = createReadStream(this.archive, { highWaterMark: 1024 * 1024 })[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    try {
      const first = await file.next();
      const compression = first.done ? undefined : compressionOf(first.value);
      const raw = first.done ? file : prepend(first.value, file);
      const content = compression === undefined ? raw : decompressed({ [Symbol.asyncIterator]: () => raw }, compression, { limit: Infinity, ...(signal === undefined ? {} : { signal }) })[Symbol.asyncIterator]();
      try {
        yield* new TarReader(this.archive, compression, new ArchiveBytes(this.archive, content, signal)).entries();
      } finally {
        await content.return?.();
      }
    } finally {
      await file.return?.();
    }
  }
}

async function* prepend(first: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield first;
  for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value;
}


/** What GNU long-name ('L', 'K') and pax ('x') headers say about the entry that follows them. */
interface Overrides {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  /** GNU tar's SCHILY.xattr.* and libarchive's LIBARCHIVE.xattr.* records. */
  xattrs?: { name: string; value: Buffer }[];
}

class TarReader {
  private last: string | undefined;

  constructor(private readonly archive: string, private readonly compression: Compression | undefined, private readonly bytes: ArchiveBytes) {}

  async *entries(): AsyncGenerator<TreeFile, void, undefined> {
    for (;;) {
      const next = await this.nextHeader();
      if (next === undefined) return await this.afterEnd();
      const { entry, dataSize } = next;
      this.bytes.where = `the middle of ${entry.path}`;
      let current = true;
      let started = false;
      let consumed = 0;
      const { bytes, archive } = this;
      const content = async function* (): AsyncGenerator<Buffer, void, undefined> {
        for await (const piece of bytes.stream(entry.size)) {
          consumed += piece.length;
          yield piece;
          if (!current) throw new Error(`content of ${entry.path} read on after the next entry was asked for`);
        }
        if (consumed < entry.size) throw truncated(archive, bytes.where);
      };
      yield {
        entry,
        read: () => {
          if (!current || started) throw new Error(`content of ${entry.path} read twice or after the next entry was asked for`);
          started = true;
          return content();
        },
      };
      current = false;
      const rest = dataSize - consumed + padding(dataSize);
      if ((await this.bytes.skip(rest)) < rest) throw truncated(archive, this.bytes.where);
      this.last = entry.path;
    }
  }

  /**
   * Reads on to the end: a compressed archive's checksum is only checked there, and entries after
   * the end-of-archive marker (archives joined with cat) would otherwise go unaudited.
   */
  private async afterEnd(): Promise<void> {
    this.bytes.where = "the end-of-archive marker";
    for await (const piece of this.bytes.stream(Infinity)) {
      const at = piece.findIndex((byte) => byte !== 0);
      if (at === -1) continue;
      throw new KilnError("KILN_AUDIT_CORRUPT_TAR", `${this.archive} has data after its end-of-archive marker, at byte ${this.bytes.offset - piece.length + at}`, {
        hint: "it may be several archives joined with cat: extract it with tar --ignore-zeros and audit the directory",
      });
    }
  }

  /** The next entry, after any GNU long-name and pax headers; undefined at the end-of-archive marker. */
  private async nextHeader(): Promise<{ entry: TreeEntry; dataSize: number } | undefined> {
    const overrides: Overrides = {};
    for (;;) {
      const first = this.last === undefined && Object.keys(overrides).length === 0;
      this.bytes.where = this.last === undefined ? "its first header" : `the header after ${this.last}`;
      const header = await this.bytes.read(blockSize);
      if (header.length < blockSize) {
        if (!first) throw truncated(this.archive, header.length === 0 ? `${this.bytes.where}, without the end-of-archive marker` : this.bytes.where);
        throw this.notTar(header.length === 0 ? "is empty" : `is ${header.length} bytes, too short for a tar archive`);
      }
      // An archive that ends at once is more likely a disk image, whose first blocks are zeros, than an empty tar.
      if (header.every((byte) => byte === 0)) {
        if (first) throw this.notTar("holds no entries (it starts with an end-of-archive marker)");
        return undefined;
      }
      if (!checksumMatches(header)) {
        if (first) throw this.notTar("does not start with a tar header");
        throw new KilnError("KILN_AUDIT_CORRUPT_TAR", `${this.archive}: ${this.bytes.where}, at byte ${this.bytes.offset - blockSize}, has a wrong checksum`, { hint: "the archive is damaged: copy or download it again" });
      }
      const type = String.fromCharCode(header[156] ?? 0);
      const size = overrides.size ?? this.number(header, 124, 12);
      if (type === "L" || type === "K" || type === "x" || type === "g") {
        if (size > metaLimit) throw this.corrupt(`a ${type === "x" || type === "g" ? "pax" : "GNU long name"} header of ${size} bytes`);
        const data = await this.bytes.read(size);
        if (data.length < size || (await this.bytes.skip(padding(size))) < padding(size)) throw truncated(this.archive, this.bytes.where);
        delete overrides.size;
        if (type === "L") overrides.path = cString(data);
        else if (type === "K") overrides.linkpath = cString(data);
        else if (type === "x") Object.assign(overrides, this.pax(data));
        continue;
      }
      if (type === "V") {
        // A GNU volume label names the archive, not a file.
        if ((await this.bytes.skip(size + padding(size))) < size + padding(size)) throw truncated(this.archive, this.bytes.where);
        continue;
      }
      return this.entry(header, type, size, overrides);
    }
  }

  private entry(header: Buffer, type: string, size: number, overrides: Overrides): { entry: TreeEntry; dataSize: number } {
    const name = cString(header.subarray(0, 100));
    const ustarPrefix = header.toString("latin1", 257, 263) === "ustar\0" ? cString(header.subarray(345, 500)) : "";
    const rawPath = overrides.path ?? (ustarPrefix === "" ? name : `${ustarPrefix}/${name}`);
    const rawLink = overrides.linkpath ?? cString(header.subarray(157, 257));
    const kind: TreeEntry["type"] =
      type === "5" || type === "D" || ((type === "0" || type === "\0") && rawPath.endsWith("/")) ? "directory"
        : type === "2" ? "symlink"
          : type === "1" || type === "3" || type === "4" || type === "6" ? "other"
            : "file"; // '0', '7', GNU sparse 'S' (its stored data) and, as POSIX asks, any unknown type
    const entry: TreeEntry = {
      path: inImage(rawPath),
      type: kind,
      mode: this.number(header, 100, 8) & 0o7777,
      uid: overrides.uid ?? this.number(header, 108, 8),
      gid: overrides.gid ?? this.number(header, 116, 8),
      size: kind === "file" ? size : 0,
    };
    if (overrides.xattrs !== undefined) entry.xattrs = overrides.xattrs;
    if (type === "2") entry.linkTarget = rawLink;
    if (type === "1") entry.linkTarget = inImage(rawLink);
    // Links, devices, fifos and directories have no data in the archive whatever their size field says.
    const headerOnly = "123456".includes(type);
    return { entry, dataSize: headerOnly ? 0 : size };
  }

  private number(header: Buffer, offset: number, length: number): number {
    const value = numeric(header.subarray(offset, offset + length));
    if (value === undefined) throw this.corrupt(`a header with an invalid number at byte ${offset}`);
    return value;
  }

  private pax(data: Buffer): Overrides {
    const records = paxRecords(data);
    if (records === undefined) throw this.corrupt("a malformed pax header");
    const overrides: Overrides = {};
    const path = records.get("path");
    const linkpath = records.get("linkpath");
    if (path !== undefined && path !== "") overrides.path = path;
    if (linkpath !== undefined && linkpath !== "") overrides.linkpath = linkpath;
    const xattrs = [...records].flatMap(([key, value]) =>
      key.startsWith("SCHILY.xattr.") ? [{ name: key.slice(13), value: Buffer.from(value) }]
        : key.startsWith("LIBARCHIVE.xattr.") ? [{ name: urlDecoded(key.slice(17)), value: Buffer.from(value, "base64") }]
          : []);
    if (xattrs.length > 0) overrides.xattrs = xattrs;
    for (const key of ["size", "uid", "gid"] as const) {
      const value = records.get(key);
      if (value === undefined || value === "") continue;
      if (!/^\d+$/.test(value)) throw this.corrupt(`a pax header with ${key}=${value}`);
      overrides[key] = Number(value);
    }
    return overrides;
  }

  private corrupt(what: string): KilnError {
    return new KilnError("KILN_AUDIT_CORRUPT_TAR", `${this.archive} has ${what} in ${this.bytes.where}`, { hint: "the archive is damaged: copy or download it again" });
  }

  private notTar(why: string): KilnError {
    const compressed = this.compression === undefined ? "" : ` (${this.compression}-compressed)`;
    return new KilnError("KILN_AUDIT_NOT_TAR", `${this.archive}${compressed} is not a tar archive: it ${why}`, {
      hint: "kiln audit reads a directory or a tar archive, plain or compressed with gzip, zstd or xz",
    });
  }
}

/** libarchive URL-encodes xattr names; a malformed one is kept as written (it is only a label). */
function urlDecoded(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
