import type { FileHandle } from "node:fs/promises";
import { Ext4Filesystem, type Ext4File } from "../image/ext4/ext4-filesystem.js";
import { findFilesystems, type Volume } from "../image/partition-table.js";
import { megabytes } from "../report/format.js";
import { dataExtents, type ByteRange } from "./sources/data-extents.js";
import { areaOf, deletedFiles, judgeRaw, nearbyOnce } from "./judging/deleted-data.js";
import { archiveTooLarge, scanArchiveMembers, scanFileContent } from "./candidates/file-content.js";
import type { Finding } from "./finding.js";
import { judgeInFile, stockHashOf, straddlingSeams } from "./judging/in-file-candidates.js";
import { stockHash, type StockFiles } from "./judging/package-files.js";
import { Ext4Tree } from "./sources/ext4-tree.js";
import { incomplete, type AuditLimits } from "./judging/incomplete.js";
import { judgeAfter, judgeBefore, rawPageBytes, scanRaw } from "./candidates/raw-scan.js";
import { auditTree, type TreeAuditResult } from "./tree-audit.js";
import { compressionOf } from "./sources/decompress.js";
import { containerHeadBytes, containerOf } from "./sources/archive-members.js";
import { inInodeSlack, judgedAsEntry } from "./judging/entry-slack.js";
import { fileHead, fileRange, ownedByLiveEntry, ownerEntry, ownerFile, type Walked, type WalkedFilesystem } from "./sources/walked-filesystem.js";

/**
 * Audits a raw disk image: the file rules on every ext filesystem in it, and one scan of every
 * byte for secrets. A candidate in a live file sends that file to be scanned as a file (a key
 * quoted inside /usr/bin/ssh is not a key); one in free space, the journal or a deleted
 * file's blocks is recoverable deleted data and is reported with its byte offset.
 */
export async function auditRawImage(handle: FileHandle, path: string, size: number, options: { signal?: AbortSignal; progress?: (message: string) => void; stock?: StockFiles; limits: AuditLimits }): Promise<TreeAuditResult & { volumes: Volume[] }> {
  const { signal, progress, stock, limits } = options;
  const name = path.slice(path.lastIndexOf("/") + 1);
  const volumes = await findFilesystems(handle, size, name);
  const data = await dataExtents(path, signal);
  const dataBytes = data?.reduce((n, [from, to]) => n + Math.min(to, size) - Math.min(from, size), 0) ?? size;
  progress?.(`scanning ${megabytes(dataBytes)} of ${name} for secrets${dataBytes < size ? ` (the other ${megabytes(size - dataBytes)} are holes: zeros)` : ""}`);
  // The scan runs beside the walk; if the walk fails (a truncated image), the scan stops too.
  const stopScan = new AbortController();
  const forward = (): void => stopScan.abort();
  signal?.addEventListener("abort", forward, { once: true });
  try {
    return await auditWithScan({ handle, path, size, volumes, data, scanSignal: stopScan.signal, signal, progress, stock, limits });
  } catch (error) {
    stopScan.abort();
    throw error;
  } finally {
    signal?.removeEventListener("abort", forward);
  }
}

interface ScanJob {
  handle: FileHandle;
  path: string;
  size: number;
  volumes: Volume[];
  /** The file's data extents; undefined: all of it. */
  data: ByteRange[] | undefined;
  /** Stops the raw scan alone; `signal` is the user's and stops everything. */
  scanSignal: AbortSignal;
  signal: AbortSignal | undefined;
  progress: ((message: string) => void) | undefined;
  stock: StockFiles | undefined;
  limits: AuditLimits;
}

async function auditWithScan({ handle, path, size, volumes, data, scanSignal, signal, progress, stock, limits }: ScanJob): Promise<TreeAuditResult & { volumes: Volume[] }> {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const every = throttled(5000);
  const total = data?.reduce((n, [from, to]) => n + to - from, 0) ?? size;
  const scanning = scanRaw(path, 0, size, {
    signal: scanSignal,
    maxHits: limits.rawCandidates,
    ...(data === undefined ? {} : { data }),
    onProgress: (bytes) => { if (every()) progress?.(`scanned ${megabytes(bytes)} of ${megabytes(total)} (${Math.floor((bytes / Math.max(total, 1)) * 100)}%)`); },
  });
  scanning.catch(() => undefined); // awaited below; an early failure must not go unhandled meanwhile
  const result: TreeAuditResult = { findings: [], files: 0, bytes: 0, problems: [] };
  const walked: Walked[] = [];
  const scratch = Buffer.allocUnsafe(1024 * 1024);
  for (const volume of volumes.filter((v) => v.filesystem === "ext")) {
    progress?.(`reading the ext filesystem${volume.index === undefined ? "" : ` in partition ${volume.index}`}`);
    const fs = await Ext4Filesystem.open(handle, { offset: volume.offset, size: volume.size, name });
    const files = new Map<number, Ext4File>();
    const others = new Map<number, Ext4File>();
    const tree = new Ext4Tree(fs, name, (file) => {
      if (file.entry.type === "file") files.set(file.inode, file);
      else if (file.entry.type !== "other" && file.extents.length > 0) others.set(file.inode, file);
    });
    // Compressed files wait for the walk to end; the thousands of gzip'd docs and man pages
    // unchanged from the recorded base need no decompressing.
    const audited = await auditTree(tree, { scanContent: () => false, limits, ...(signal === undefined ? {} : { signal }), ...(stock === undefined ? {} : { stock }) });
    merge(result, audited);
    if (fs.needsRecovery) result.problems.push(`${tree.description}: its journal needs recovery (the image was taken from a running system); recent changes may be missing`);
    // Damage the reader worked around is bytes it could not read as what they claim to be.
    result.findings.push(...fs.problems.map((p) => incomplete("filesystem-damage", "/", `${tree.description}: ${p}`)));
    walked.push({ volume, fs, files, others, judge: audited.judge, packages: audited.packages });
    for (const file of files.values()) {
      if (file.entry.size < 4) continue;
      // Compressed by its first bytes, whatever its name (a rotated log.1 is gzip too).
      const head = await fileHead(handle, { volume, fs, files }, file, containerHeadBytes, scratch);
      const compressed = compressionOf(head) !== undefined;
      const container = compressed ? undefined : containerOf(head);
      if (!compressed && container === undefined) continue;
      if (audited.packages.has(file.entry.path) && audited.packages.exemption(file.entry.path, await stockCheckSum(handle, { volume, fs, files }, file, scratch)) !== undefined) continue;
      // An archive's own bytes are in the raw scan like any file's; what that cannot see (its
      // compressed members, archives in it) is scanned by opening it.
      if (container !== undefined) {
        if (file.entry.size > limits.containerBytes) {
          result.findings.push(archiveTooLarge(container, file.entry.path, limits));
          continue;
        }
        const where = { volume, fs, files };
        const archive = { length: file.entry.size, at: (offset: number, length: number) => fileRange(handle, where, file, offset, length) };
        const members = await scanArchiveMembers(file.entry.path, container, archive, { limits, ...(signal === undefined ? {} : { signal }) });
        result.bytes += members.bytes;
        result.findings.push(...members.gaps);
        result.findings.push(...audited.judge([{ path: file.entry.path, scan: { ...members, gaps: [], sha256: "" } }]));
        continue;
      }
      const scan = await scanFileContent(file.entry.path, fs.read(file), { limits, ...(signal === undefined ? {} : { signal }) });
      result.bytes += scan.bytes;
      result.findings.push(...scan.gaps);
      result.findings.push(...audited.judge([{ path: file.entry.path, scan }]));
    }
  }

  const { hits, coldPages, truncated } = await scanning;
  if (hits.length > 0) progress?.(`judging ${hits.length} candidate secret${hits.length === 1 ? "" : "s"} where they lie`);
  result.bytes += size;
  if (truncated) result.findings.push(incomplete("raw-candidates", "/", `more than ${limits.rawCandidates} candidate secrets in the raw bytes of ${name}; those past the limit were not judged`));
  const candidates = new Map<Ext4File, { w: Walked; offsets: number[]; whole: boolean }>();
  // A candidate thrown out where it lies may be a secret in its file, whose bytes go on elsewhere.
  for (const file of filesAtRunEdges(walked, coldPages)) candidates.set(file.file, { w: file.w, offsets: [], whole: true });
  for (const w of walked) {
    for (const file of await straddlingSeams(handle, w)) candidates.set(file, { w, offsets: [], whole: true });
    // Inline data is split between the inode's block map and an xattr: no raw pass sees it whole.
    for (const file of w.files.values()) if (file.inline && file.entry.size > 0) candidates.set(file, { w, offsets: [], whole: true });
  }
  const deleted = new Map(await Promise.all(walked.map(async (w) => [w, await w.fs.deletedInodes()] as const)));
  const raw: Finding[] = [];
  for (const hit of hits) {
    const w = walked.find((x) => hit.offset >= x.volume.offset && hit.offset < x.volume.offset + x.volume.size);
    const owner = w === undefined ? undefined : ownerFile(w, hit.offset);
    if (w !== undefined && inInodeSlack(handle, w, hit.offset)) {
      const inode = w.fs.inodeAtByte(hit.offset - w.volume.offset);
      const path = inode === undefined ? undefined : w.fs.pathOf(inode);
      raw.push(...await judgeRaw(handle, hit, { area: "entry-slack", ...(inode === undefined ? {} : { inode }), ...(path === undefined ? {} : { path: `${path} (its inode record)` }) }));
      continue;
    }
    if (owner === undefined && w !== undefined && ownedByLiveEntry(w, hit.offset)) {
      const other = ownerEntry(w, hit.offset);
      if (other === undefined || judgedAsEntry(handle, w, other, hit.offset)) continue;
      raw.push(...await judgeRaw(handle, hit, { area: "entry-slack", inode: other.inode, path: other.entry.path }));
      continue;
    }
    if (w !== undefined && owner !== undefined && !owner.inline && !judgedAsEntry(handle, w, owner, hit.offset)) {
      raw.push(...await judgeRaw(handle, hit, { area: "entry-slack", inode: owner.inode, path: owner.entry.path }));
      continue;
    }
    if (w === undefined || owner === undefined) {
      raw.push(...await judgeRaw(handle, hit, w === undefined ? { area: "outside-filesystem" } : areaOf(w, deleted.get(w) ?? [], hit.offset)));
      continue;
    }
    const entry = candidates.get(owner) ?? { w, offsets: [], whole: false };
    entry.offsets.push(hit.offset);
    candidates.set(owner, entry);
  }
  for (const [file, { w, offsets, whole }] of candidates) result.findings.push(...await judgeInFile(handle, w, file, offsets, whole, { limits, ...(signal === undefined ? {} : { signal }) }));
  result.findings.push(...nearbyOnce(raw));
  for (const w of walked) result.findings.push(...await deletedFiles(handle, w, deleted.get(w) ?? []));
  return { ...result, volumes };
}

/**
 * The live files owning a page whose candidates were judged with bytes that are not the file's:
 * within a judge's reach of the start or end of one of the file's runs of blocks.
 */
function filesAtRunEdges(walked: Walked[], coldPages: readonly number[]): { w: Walked; file: Ext4File }[] {
  const found = new Map<Ext4File, Walked>();
  for (const page of coldPages) {
    const [pageStart, pageEnd] = [page * rawPageBytes, (page + 1) * rawPageBytes];
    const w = walked.find((x) => pageStart < x.volume.offset + x.volume.size && pageEnd > x.volume.offset);
    if (w === undefined) continue;
    const bs = w.fs.blockSize;
    for (let at = Math.max(pageStart, w.volume.offset); at < pageEnd; at += bs) {
      const file = ownerFile(w, at);
      if (file === undefined || found.has(file)) continue;
      const block = Math.floor((at - w.volume.offset) / bs);
      const run = file.extents.find((r) => block >= r.physicalBlock && block < r.physicalBlock + r.blocks);
      const runStart = run === undefined ? 0 : w.volume.offset + run.physicalBlock * bs;
      const runEnd = run === undefined ? 0 : runStart + run.blocks * bs;
      if (run === undefined || pageStart - judgeBefore < runStart || pageEnd + judgeAfter > runEnd) found.set(file, w);
    }
  }
  return [...found].map(([file, w]) => ({ w, file }));
}

/** True at most once per `ms`, so progress on a large image is a line every few seconds. */
function throttled(ms: number): () => boolean {
  let last = Date.now();
  return () => {
    const now = Date.now();
    if (now - last < ms) return false;
    last = now;
    return true;
  };
}

/** sha256 of a file the recorded base has; small files (most gzip'd docs) in one read into `scratch`. */
async function stockCheckSum(handle: FileHandle, w: WalkedFilesystem, file: Ext4File, scratch: Buffer): Promise<string> {
  if (file.entry.size > scratch.length) return stockHashOf(w.fs.read(file));
  return stockHash().update(await fileHead(handle, w, file, file.entry.size, scratch)).digest("hex");
}

function merge(into: TreeAuditResult, from: TreeAuditResult): void {
  into.findings.push(...from.findings);
  into.files += from.files;
  into.bytes += from.bytes;
  into.problems.push(...from.problems);
}

