import { KilnError } from "../../errors.js";
import { contextFor, textContextFor } from "../judging/file-context.js";
import { stockHash } from "../judging/package-files.js";
import type { Finding } from "../finding.js";
import { defaultLimits, incomplete, type AuditLimits } from "../judging/incomplete.js";
import { StreamScanner, type LocatedMatch } from "./stream-scanner.js";
import { compressionOf, decompressed } from "../sources/decompress.js";
import { containerHeadBytes, containerOf, inMemory, membersOf, type ArchiveBytes, type Container } from "../sources/archive-members.js";

export interface FileScan {
  matches: LocatedMatch[];
  /** Bytes scanned: the file's, or what it decompressed to. */
  bytes: number;
  /** Parts of the file not judged (audit-incomplete findings): a cut, damage, a missing tool. */
  gaps: Finding[];
  /** sha256 of the file's own bytes (as stored, compressed or not), to compare with the recorded base. */
  sha256: string;
}

export interface FileScanOptions {
  signal?: AbortSignal;
  /** Decompressed content is scanned up to `decompressedBytes` per file; a bomb cannot stall the audit. */
  limits?: AuditLimits;
  /** How many archives deep this content is (a member of a member…). */
  depth?: number;
}

/** Archives inside archives deeper than this are a gap, not a recursion an image controls. */
const maxDepth = 8;

/**
 * What compressed content was found to hold, by its bytes and how its text is judged: an image
 * often keeps the same compressed file many times (a package's docs and a backup tar of /usr),
 * and decompressing and scanning each copy again cost several times the whole audit. Identical
 * bytes judged alike give identical matches and gaps. Bounded, oldest dropped first; cleared
 * when an audit starts.
 */
const scannedCompressed = new Map<string, Omit<FileScan, "sha256">>();
const scannedCompressedLimit = 50_000;

function compressedKey(sha256: string, path: string, options: FileScanOptions): string {
  const limits = options.limits ?? defaultLimits;
  return `${sha256} ${textContextFor(path.replace(compressedSuffix, ""))} ${options.depth ?? 0} ${limits.decompressedBytes} ${limits.containerBytes}`;
}

/** Drops what earlier audits judged, so each audit's work (and a benchmark's) is its own. */
export function forgetScannedContent(): void {
  scannedCompressed.clear();
}

function remember(key: string, scan: Omit<FileScan, "sha256">): void {
  if (scannedCompressed.size >= scannedCompressedLimit) scannedCompressed.delete(scannedCompressed.keys().next().value as string);
  scannedCompressed.set(key, scan);
}

const compressedSuffix = /\.(?:gz|tgz|zst|tzst|xz|txz|bz2|tbz2?)$/;

/**
 * Scans one file's content for secrets, judged by where the file is and whether it is text.
 * Compressed files (gzip, zstd, xz: rotated logs, archives) are scanned inside, where a raw
 * scan of the image is blind.
 */
export async function scanFileContent(path: string, chunks: AsyncIterable<Buffer>, options: FileScanOptions = {}): Promise<FileScan> {
  const { signal } = options;
  const limit = (options.limits ?? defaultLimits).decompressedBytes;
  const hash = stockHash();
  const iterator = hashed(chunks, hash)[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done === true) return { matches: [], bytes: 0, gaps: [], sha256: hash.digest("hex") };
  const all = withFirst(first.value, iterator);
  const kind = compressionOf(first.value);
  if (kind === undefined) return { ...await scanPlain(path, all, options), sha256: hash.digest("hex") };
  try {
    const stream = decompressed(all, kind, { limit, ...(signal === undefined ? {} : { signal }) });
    const inner = await scanPlain(path.replace(compressedSuffix, ""), stream, options, path);
    for await (const _ of all) { /* the rest of the file, for its checksum */ }
    const gaps = stream.cut ? [incomplete("decompressed-size", path, `its ${kind} data goes on past ${limit} bytes; the rest was not scanned`)] : [];
    gaps.push(...inner.gaps);
    const scan = { ...inner, gaps, matches: inner.matches.map((m) => ({ ...m, message: `${m.message} (inside the ${kind} data)` })) };
    const sha256 = hash.digest("hex");
    remember(compressedKey(sha256, path, options), scan);
    return { ...scan, sha256 };
  } catch (error) {
    if (error instanceof KilnError && error.code === "KILN_AUDIT_CORRUPT_COMPRESSED") {
      return { matches: [], bytes: 0, gaps: [incomplete("corrupt-compressed", path, `${error.message}; its content was not scanned`)], sha256: "" };
    }
    // A decompressor this machine lacks leaves a gap the report names, not a failed audit.
    if (error instanceof KilnError && error.code === "KILN_TOOL_MISSING") {
      return { matches: [], bytes: 0, gaps: [incomplete("decompressor-missing", path, `${kind} data not looked inside: ${error.message} (${error.hint ?? ""})`)], sha256: "" };
    }
    throw error;
  }
}

async function* hashed(chunks: AsyncIterable<Buffer>, hash: ReturnType<typeof stockHash>): AsyncIterable<Buffer> {
  for await (const chunk of chunks) {
    hash.update(chunk);
    yield chunk;
  }
}

/** `path` decides how text is judged; `where` (the file as stored) is where gaps are reported. */
async function scanPlain(path: string, chunks: AsyncIterable<Buffer>, options: FileScanOptions, where = path): Promise<Omit<FileScan, "sha256">> {
  const limits = options.limits ?? defaultLimits;
  let scanner: StreamScanner | undefined;
  let bytes = 0;
  let container: Container | undefined;
  const kept: Buffer[] = [];
  for await (const chunk of chunks) {
    if (scanner === undefined) {
      scanner = new StreamScanner(contextFor(path, chunk));
      container = containerOf(chunk.subarray(0, containerHeadBytes));
    }
    scanner.push(chunk);
    bytes += chunk.length;
    if (container !== undefined && bytes <= limits.containerBytes) kept.push(chunk);
  }
  const matches = scanner?.end() ?? [];
  if (container === undefined) return { matches, bytes, gaps: [] };
  // An archive's compressed members are blind to the scan of its bytes: each is scanned inside.
  if (bytes > limits.containerBytes) return { matches, bytes, gaps: [archiveTooLarge(container, where, limits)] };
  const members = await scanArchiveMembers(path, container, inMemory(Buffer.concat(kept)), options, where);
  return { matches: [...matches, ...members.matches], bytes: bytes + members.bytes, gaps: members.gaps };
}

/** The gap an archive past the size kiln opens leaves: its compressed members unread. */
export function archiveTooLarge(container: Container, where: string, limits: AuditLimits): Finding {
  return incomplete("container-size", where, `a ${container} archive of more than ${limits.containerBytes} bytes: its compressed members were not looked inside`);
}

/**
 * Scans what a zip, ar or tar archive's own bytes do not show: its compressed members and the
 * archives in it, each as a file (`path/member`). Gaps are reported at `where`.
 */
export async function scanArchiveMembers(path: string, container: Container, archive: ArchiveBytes, options: FileScanOptions, where = path): Promise<Omit<FileScan, "sha256">> {
  const limits = options.limits ?? defaultLimits;
  const depth = (options.depth ?? 0) + 1;
  if (depth > maxDepth) return { matches: [], bytes: 0, gaps: [incomplete("nested-too-deep", where, `archives nested more than ${maxDepth} deep: the innermost were not looked inside`)] };
  const matches: LocatedMatch[] = [];
  const gaps: Finding[] = [];
  let bytes = 0;
  for await (const member of membersOf(container, archive, limits.decompressedBytes)) {
    if ("problem" in member) {
      gaps.push(incomplete(member.cut === true ? "decompressed-size" : "corrupt-compressed", where, `${container} member ${member.name}: ${member.problem}`));
      continue;
    }
    const memberPath = `${path}/${member.name}`;
    const memberOptions = { ...options, depth };
    const inner = scannedCompressed.get(compressedKey(stockHash().update(member.data).digest("hex"), memberPath, memberOptions))
      ?? await scanFileContent(memberPath, once(member.data), memberOptions);
    const quoted = JSON.stringify(member.name);
    matches.push(...inner.matches.map(({ line: _line, ...m }) => ({ ...m, message: `${m.message} (in the ${container} member ${quoted})` })));
    gaps.push(...inner.gaps.map((g) => ({ ...g, location: { kind: "file" as const, path: where } })));
    bytes += inner.bytes;
  }
  return { matches, bytes, gaps };
}

async function* once(data: Buffer): AsyncIterable<Buffer> {
  yield data;
}

async function* withFirst(first: Buffer, rest: AsyncIterator<Buffer>): AsyncIterable<Buffer> {
  try {
    yield first;
    for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value;
  } finally {
    await rest.return?.();
  }
}
