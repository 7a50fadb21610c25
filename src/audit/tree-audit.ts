import { CancelledError } from "../errors.js";
import { scanFileContent, type FileScan } from "./candidates/file-content.js";
import type { Finding } from "./finding.js";
import type { ImageTree, TreeEntry, TreeFile } from "./sources/image-tree.js";
import { fileRules } from "./judging/file-rules/all-file-rules.js";
import type { FileRule } from "./judging/file-rules/file-rule.js";
import { scanContent } from "./judging/content-scanner.js";
import type { AuditLimits } from "./judging/incomplete.js";
import { printable } from "./judging/mask.js";
import { StockFiles } from "./judging/package-files.js";

export interface TreeAuditResult {
  findings: Finding[];
  files: number;
  bytes: number;
  problems: string[];
}

/** A scanned file with its candidate secrets, before it is judged against the recorded base. */
export interface ScannedFile {
  path: string;
  scan: FileScan;
}

export interface TreeAuditOptions {
  /** Whether a file's whole content is scanned for secrets (a raw image scans its bytes instead). */
  scanContent: (entry: TreeEntry) => boolean;
  /** The base kiln recorded before provisioning; without it nothing is exempt. */
  stock?: StockFiles;
  signal?: AbortSignal;
  limits: AuditLimits;
}

/**
 * Walks a tree once: every file rule sees each entry it wants (with as much content as it
 * asked for), and files chosen by `scanContent` are scanned for secrets, compressed or not.
 * `judge` turns scans (and a raw image's later rescans) into findings: in a file unchanged from
 * the recorded base's package, at info.
 */
export async function auditTree(tree: ImageTree, options: TreeAuditOptions): Promise<TreeAuditResult & { judge: (scanned: ScannedFile[]) => Finding[]; packages: StockFiles }> {
  const ruleSet = fileRules();
  const packages = options.stock ?? new StockFiles();
  const scanned: ScannedFile[] = [];
  const result: TreeAuditResult = { findings: [], files: 0, bytes: 0, problems: [] };
  for await (const file of tree.entries(options.signal)) {
    if (options.signal?.aborted === true) throw new CancelledError();
    result.files++;
    const scan = await auditEntry(file, ruleSet, options, result);
    if (scan !== undefined && scan.matches.length > 0) scanned.push({ path: file.entry.path, scan });
  }
  result.findings.push(...(tree.gaps ?? []));
  for (const rule of ruleSet) result.findings.push(...(rule.finish?.() ?? []));
  const judge = (files: ScannedFile[]): Finding[] => files.flatMap(({ path, scan }) => {
    const why = packages.exemption(path, scan.sha256);
    return scan.matches.map((m): Finding => ({
      rule: m.rule, excerpt: m.excerpt,
      ...(why === undefined ? { severity: m.severity, message: m.message } : { severity: "info", message: `${m.message}; exempt: ${why}` }),
      location: { kind: "file", path, ...(m.line === undefined ? {} : { line: m.line }) },
    }));
  });
  result.findings.push(...judge(scanned));
  return { ...result, judge, packages };
}

async function auditEntry(file: TreeFile, ruleSet: FileRule[], options: TreeAuditOptions, result: TreeAuditResult): Promise<FileScan | undefined> {
  const { entry } = file;
  const wanting = ruleSet.map((rule) => ({ rule, bytes: rule.wants(entry) })).filter((w): w is { rule: FileRule; bytes: number } => w.bytes !== undefined);
  const scan = entry.type === "file" && entry.size > 0 && options.scanContent(entry);
  const headBytes = Math.max(0, ...wanting.map((w) => w.bytes));
  let head = "";
  const keep = (text: string): void => { head = text; };
  let scanned: FileScan | undefined;
  if (scan) {
    scanned = await scanFileContent(entry.path, keepHead(file.read(), headBytes, keep, false), { limits: options.limits, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    result.bytes += scanned.bytes;
    result.findings.push(...scanned.gaps);
  } else if (headBytes > 0) {
    for await (const _ of keepHead(file.read(), headBytes, keep, true)) { /* only the head is wanted */ }
  }
  result.findings.push(...outsideContent(entry));
  for (const { rule, bytes } of wanting) result.findings.push(...rule.visit(entry, bytes > 0 ? head : undefined));
  return scanned;
}

/**
 * Bytes an entry keeps outside its content: a symlink's target (in the inode or a block of its
 * own), its extended attributes (in the inode or an xattr block). Judged as configuration: no
 * stock program puts a key there.
 */
function outsideContent(entry: TreeEntry): Finding[] {
  const places: { where: string; bytes: Buffer }[] = (entry.xattrs ?? []).map((x) => ({ where: `the extended attribute ${printable(x.name)}`, bytes: x.value }));
  if (entry.type === "symlink" && entry.linkTarget !== undefined) places.push({ where: "the symlink target", bytes: Buffer.from(entry.linkTarget) });
  places.push({ where: "its name", bytes: Buffer.from(entry.path.slice(entry.path.lastIndexOf("/") + 1)) });
  return places.flatMap(({ where, bytes }) => scanContent(bytes.toString("latin1"), "config").map((m): Finding => ({
    rule: m.rule, severity: m.severity, message: `${m.message} (in ${where})`, excerpt: m.excerpt, location: { kind: "file", path: entry.path },
  })));
}

/** Passes chunks through while keeping the first `limit` bytes as text for the file rules. */
async function* keepHead(chunks: AsyncIterable<Buffer>, limit: number, done: (text: string) => void, stopAtLimit: boolean): AsyncIterable<Buffer> {
  const kept: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of chunks) {
      if (size < limit) {
        kept.push(chunk.subarray(0, limit - size));
        size += Math.min(chunk.length, limit - size);
      }
      yield chunk;
      if (stopAtLimit && size >= limit) break;
    }
  } finally {
    done(Buffer.concat(kept).toString("latin1"));
  }
}
