import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { Ext4Filesystem, type Ext4File } from "../image/ext4/ext4-filesystem.js";
import { findFilesystems, type Volume } from "../image/partition-table.js";
import { megabytes } from "../report/format.js";
import { scanContent, type ContentContext, type ContentMatch } from "./content-scanner.js";
import { scanFileContent } from "./file-content.js";
import type { Finding, FindingLocation } from "./finding.js";
import type { ImageTree } from "./image-tree.js";
import { scanRaw, rawHitLimit, type RawHit } from "./raw-scan.js";
import { rules } from "./rules.js";
import { combinedPattern, longestMatch } from "./secret-patterns.js";
import type { PackageFiles } from "./package-files.js";
import { auditTree, type TreeAuditResult } from "./tree-audit.js";

type RawArea = Extract<FindingLocation, { kind: "raw" }>["area"];

/** An ext filesystem of the image, walked, with its regular files by inode. */
interface WalkedFilesystem {
  volume: Volume;
  fs: Ext4Filesystem;
  files: Map<number, Ext4File>;
}

type Walked = WalkedFilesystem & { judge: Awaited<ReturnType<typeof auditTree>>["judge"]; packages: PackageFiles };

const compressedName = /\.(?:gz|tgz|zst|tzst|xz|txz)$/;

/**
 * Audits a raw disk image: the file rules on every ext filesystem in it, and one scan of every
 * byte for secrets. A candidate in a live file sends that file to be scanned as a file (a key
 * quoted inside /usr/bin/ssh is not a key); one in free space, the journal or a deleted
 * file's blocks is recoverable deleted data and is reported with its byte offset.
 */
export async function auditRawImage(handle: FileHandle, path: string, size: number, options: { signal?: AbortSignal; progress?: (message: string) => void } = {}): Promise<TreeAuditResult & { volumes: Volume[] }> {
  const { signal, progress } = options;
  const name = path.slice(path.lastIndexOf("/") + 1);
  const volumes = await findFilesystems(handle, size, name);
  progress?.(`scanning all ${megabytes(size)} of ${name} for secrets`);
  // The scan runs beside the walk; if the walk fails (a truncated image), the scan stops too.
  const stopScan = new AbortController();
  const forward = (): void => stopScan.abort();
  signal?.addEventListener("abort", forward, { once: true });
  try {
    return await auditWithScan({ handle, path, size, volumes, scanSignal: stopScan.signal, signal, progress });
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
  /** Stops the raw scan alone; `signal` is the user's and stops everything. */
  scanSignal: AbortSignal;
  signal: AbortSignal | undefined;
  progress: ((message: string) => void) | undefined;
}

async function auditWithScan({ handle, path, size, volumes, scanSignal, signal, progress }: ScanJob): Promise<TreeAuditResult & { volumes: Volume[] }> {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const every = throttled(5000);
  const scanning = scanRaw(path, 0, size, {
    signal: scanSignal,
    onProgress: (bytes) => { if (every()) progress?.(`scanned ${megabytes(bytes)} of ${megabytes(size)} (${Math.floor((bytes / size) * 100)}%)`); },
  });
  scanning.catch(() => undefined); // awaited below; an early failure must not go unhandled meanwhile
  const result: TreeAuditResult = { findings: [], files: 0, bytes: 0, problems: [] };
  const walked: Walked[] = [];
  for (const volume of volumes.filter((v) => v.filesystem === "ext")) {
    progress?.(`reading the ext filesystem${volume.index === undefined ? "" : ` in partition ${volume.index}`}`);
    const fs = await Ext4Filesystem.open(handle, { offset: volume.offset, size: volume.size, name });
    const files = new Map<number, Ext4File>();
    const tree: ImageTree = {
      description: `ext filesystem at byte ${volume.offset} of ${name}`,
      entries: async function* () {
        for await (const file of fs.walk(signal)) {
          if (file.entry.type === "file") files.set(file.inode, file);
          yield { entry: file.entry, read: () => fs.read(file) };
        }
      },
    };
    // Compressed files wait for the walk to end: by then dpkg's checksums are known, and the
    // thousands of stock gzip'd docs and man pages need no decompressing.
    const audited = await auditTree(tree, { scanContent: () => false, ...(signal === undefined ? {} : { signal }) });
    merge(result, audited);
    if (fs.needsRecovery) result.problems.push(`${tree.description}: its journal needs recovery (the image was taken from a running system); recent changes may be missing`);
    result.problems.push(...fs.problems.map((p) => `${tree.description}: ${p}`));
    walked.push({ volume, fs, files, judge: audited.judge, packages: audited.packages });
    for (const file of files.values()) {
      if (!compressedName.test(file.entry.path) || file.entry.size === 0) continue;
      if (audited.packages.size > 0 && audited.packages.isStock(file.entry.path, await md5Of(fs.read(file)))) continue;
      const scan = await scanFileContent(file.entry.path, fs.read(file), signal);
      result.bytes += scan.bytes;
      result.problems.push(...scan.problems);
      result.findings.push(...audited.judge([{ path: file.entry.path, scan }]));
    }
  }

  const hits = await scanning;
  if (hits.length > 0) progress?.(`judging ${hits.length} candidate secret${hits.length === 1 ? "" : "s"} where they lie`);
  result.bytes += size;
  if (hits.length >= rawHitLimit) result.problems.push(`more than ${rawHitLimit} candidate secrets in the raw bytes; only the first were judged`);
  const candidates = new Map<Ext4File, { w: Walked; offsets: number[]; whole: boolean }>();
  for (const w of walked) for (const file of await straddlingSeams(handle, w)) candidates.set(file, { w, offsets: [], whole: true });
  const deleted = new Map(await Promise.all(walked.map(async (w) => [w, await w.fs.deletedInodes()] as const)));
  const raw: Finding[] = [];
  for (const hit of hits) {
    const w = walked.find((x) => hit.offset >= x.volume.offset && hit.offset < x.volume.offset + x.volume.size);
    const owner = w === undefined ? undefined : ownerFile(w, hit.offset);
    if (w === undefined || owner === undefined) {
      raw.push(...await judgeRaw(handle, hit, w === undefined ? { area: "outside-filesystem" } : areaOf(w, deleted.get(w) ?? [], hit.offset)));
      continue;
    }
    const entry = candidates.get(owner) ?? { w, offsets: [], whole: false };
    entry.offsets.push(hit.offset);
    candidates.set(owner, entry);
  }
  for (const [file, { w, offsets, whole }] of candidates) result.findings.push(...await judgeInFile(handle, w, file, offsets, whole, signal));
  result.findings.push(...nearbyOnce(raw));
  for (const w of walked) result.findings.push(...await deletedFiles(handle, w, deleted.get(w) ?? []));
  return { ...result, volumes };
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

function merge(into: TreeAuditResult, from: TreeAuditResult): void {
  into.findings.push(...from.findings);
  into.files += from.files;
  into.bytes += from.bytes;
  into.problems.push(...from.problems);
}

/** The live regular file whose bytes (data, or inline data in its inode) hold this offset. */
function ownerFile(w: WalkedFilesystem, offset: number): Ext4File | undefined {
  const inFs = offset - w.volume.offset;
  const owner = w.fs.ownerOf(Math.floor(inFs / w.fs.blockSize));
  if (owner.kind === "file") return w.files.get(owner.inode);
  if (owner.kind === "metadata" && owner.what === "inode table") {
    const inode = w.fs.inodeAtByte(inFs);
    return inode === undefined ? undefined : w.files.get(inode);
  }
  return undefined;
}

type DeletedInodes = Awaited<ReturnType<Ext4Filesystem["deletedInodes"]>>;

function areaOf(w: WalkedFilesystem, deleted: DeletedInodes, offset: number): { area: RawArea; inode?: number; formerPath?: string } {
  const block = Math.floor((offset - w.volume.offset) / w.fs.blockSize);
  const owner = w.fs.ownerOf(block);
  if (owner.kind === "journal") return { area: "journal" };
  const gone = deleted.find((d) => d.runs.some((r) => block >= r.physicalBlock && block < r.physicalBlock + r.blocks));
  if (gone !== undefined) return { area: "deleted-file", inode: gone.inode, ...(gone.formerPath === undefined ? {} : { formerPath: gone.formerPath }) };
  return { area: "unallocated" };
}

/**
 * Judges the candidates the raw scan found inside one live file. A file is read whole, as a
 * file, when a line number or dpkg's checksum can matter, or when a secret may continue in
 * another fragment; a large binary no package installed is judged around each candidate only,
 * so a payload archive of hundreds of megabytes is not read a second time.
 */
async function judgeInFile(handle: FileHandle, w: Walked, file: Ext4File, offsets: number[], whole: boolean, signal?: AbortSignal): Promise<Finding[]> {
  const path = file.entry.path;
  const nearRunEnd = offsets.some((offset) => {
    const block = Math.floor((offset - w.volume.offset) / w.fs.blockSize);
    const run = file.extents.find((r) => block >= r.physicalBlock && block < r.physicalBlock + r.blocks);
    return run === undefined || w.volume.offset + (run.physicalBlock + run.blocks) * w.fs.blockSize - offset < inPlaceWindow;
  });
  let head = Buffer.alloc(0);
  for await (const chunk of w.fs.read(file, 8000)) head = Buffer.concat([head, chunk]);
  const binary = head.includes(0);
  if (whole || nearRunEnd || file.entry.size <= 4 * 1024 * 1024 || !binary || w.packages.has(path)) {
    // Judged in place first with the most permissive file context: nothing there, nothing to read.
    if (!whole && !nearRunEnd && !(await anyInPlace(handle, w, offsets, "config"))) return [];
    const scan = await scanFileContent(path, w.fs.read(file), signal);
    return w.judge([{ path, scan }]);
  }
  const findings: Finding[] = [];
  for (const offset of offsets) {
    for (const m of await inPlace(handle, w, offset, "binary")) {
      findings.push({ rule: m.rule, severity: m.severity, message: m.message, excerpt: m.excerpt, location: { kind: "file", path } });
    }
  }
  return findings;
}

async function inPlace(handle: FileHandle, w: Walked, offset: number, context: ContentContext): Promise<ContentMatch[]> {
  const before = Math.min(offset - w.volume.offset, 2048);
  const window = Buffer.alloc(before + inPlaceWindow);
  const { bytesRead } = await handle.read(window, 0, window.length, offset - before);
  return scanContent(window.subarray(0, bytesRead).toString("latin1"), context, before, before + 1);
}

async function anyInPlace(handle: FileHandle, w: Walked, offsets: number[], context: ContentContext): Promise<boolean> {
  for (const offset of offsets) if ((await inPlace(handle, w, offset, context)).length > 0) return true;
  return false;
}

const inPlaceWindow = 16 * 1024;

async function md5Of(chunks: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash("md5");
  for await (const chunk of chunks) hash.update(chunk);
  return hash.digest("hex");
}

/** A candidate in bytes no live file owns, judged with only the bytes around it as context. */
async function judgeRaw(handle: FileHandle, hit: RawHit, where: { area: RawArea; inode?: number; formerPath?: string }): Promise<Finding[]> {
  const before = Math.min(hit.offset, 2048);
  const window = Buffer.alloc(before + 16 * 1024);
  const { bytesRead } = await handle.read(window, 0, window.length, hit.offset - before);
  const text = window.subarray(0, bytesRead).toString("latin1");
  return scanContent(text, "unallocated", before, before + 1).map((m): Finding => ({
    rule: m.rule.id === rules.awsKeyId.id ? m.rule : rules.deletedSecret,
    severity: m.rule.id === rules.awsKeyId.id ? m.severity : rules.deletedSecret.severity,
    message: `${m.message}, recoverable from ${where.area === "outside-filesystem" ? "bytes outside any ext filesystem" : where.area === "journal" ? "the filesystem journal" : "deleted data"}`,
    excerpt: m.excerpt,
    location: { kind: "raw", offset: hit.offset, ...where },
  }));
}

/** One finding per secret: a key id and its secret on the next line are one leak, not two. */
function nearbyOnce(findings: Finding[]): Finding[] {
  const kept: Finding[] = [];
  for (const f of findings) {
    const last = kept.at(-1);
    if (last !== undefined && last.location.kind === "raw" && f.location.kind === "raw" && f.location.offset - last.location.offset < 4096 && last.rule === f.rule) continue;
    kept.push(f);
  }
  return kept;
}

/**
 * Files whose blocks are not contiguous: a secret split across two fragments is in no single
 * run of bytes the raw scan read, so each seam is checked and such files are scanned as files.
 */
async function straddlingSeams(handle: FileHandle, w: WalkedFilesystem): Promise<Ext4File[]> {
  const pattern = combinedPattern("g");
  const found: Ext4File[] = [];
  const side = Buffer.alloc(longestMatch);
  for (const file of w.files.values()) {
    const runs = [...file.extents].sort((a, b) => a.logicalBlock - b.logicalBlock);
    for (let i = 1; i < runs.length; i++) {
      const [prev, next] = [runs[i - 1], runs[i]];
      if (prev === undefined || next === undefined || prev.logicalBlock + prev.blocks !== next.logicalBlock || prev.physicalBlock + prev.blocks === next.physicalBlock) continue;
      const seam = (prev.physicalBlock + prev.blocks) * w.fs.blockSize + w.volume.offset;
      await handle.read(side, 0, longestMatch, seam - longestMatch);
      const left = side.toString("latin1");
      await handle.read(side, 0, longestMatch, next.physicalBlock * w.fs.blockSize + w.volume.offset);
      const text = left + side.toString("latin1");
      if ([...text.matchAll(pattern)].some((m) => m.index < longestMatch && m.index + m[0].length > longestMatch)) {
        found.push(file);
        break;
      }
    }
  }
  return found;
}

/** Deleted inodes whose blocks still hold something: recoverable with icat by anyone. */
async function deletedFiles(handle: FileHandle, w: WalkedFilesystem, deleted: DeletedInodes): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const d of deleted) {
    const first = d.runs[0];
    if (first === undefined) continue;
    const sample = Buffer.alloc(Math.min(64 * 1024, first.blocks * w.fs.blockSize));
    const offset = w.volume.offset + first.physicalBlock * w.fs.blockSize;
    await handle.read(sample, 0, sample.length, offset);
    if (sample.every((b) => b === 0)) continue;
    const bytes = d.runs.reduce((n, r) => n + r.blocks * w.fs.blockSize, 0);
    findings.push({
      rule: rules.deletedFile, severity: rules.deletedFile.severity,
      message: `deleted file${d.formerPath === undefined ? "" : ` ${d.formerPath}`} (inode ${d.inode}) still holds ${bytes} bytes in unallocated blocks`,
      location: { kind: "raw", offset, area: "deleted-file", inode: d.inode, ...(d.formerPath === undefined ? {} : { formerPath: d.formerPath }) },
    });
  }
  return findings;
}
