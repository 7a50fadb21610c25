import { CancelledError } from "../errors.js";
import { scanFileContent, type FileScan } from "./file-content.js";
import type { Finding } from "./finding.js";
import type { ImageTree, TreeEntry, TreeFile } from "./image-tree.js";
import { fileRules } from "./file-rules/all-file-rules.js";
import type { FileRule } from "./file-rules/file-rule.js";
import { PackageFiles } from "./package-files.js";

export interface TreeAuditResult {
  findings: Finding[];
  files: number;
  bytes: number;
  problems: string[];
}

/** Content findings wait for the whole tree: dpkg's checksums may come after the file. */
export interface ScannedFile {
  path: string;
  scan: FileScan;
}

export interface TreeAuditOptions {
  /** Whether a file's whole content is scanned for secrets (a raw image scans its bytes instead). */
  scanContent: (entry: TreeEntry) => boolean;
  signal?: AbortSignal;
}

/**
 * Walks a tree once: every file rule sees each entry it wants (with as much content as it
 * asked for), and files chosen by `scanContent` are scanned for secrets, compressed or not.
 * `judge` turns later scans (a raw image's rescans) into findings with the same dpkg record.
 */
export async function auditTree(tree: ImageTree, options: TreeAuditOptions): Promise<TreeAuditResult & { judge: (scanned: ScannedFile[]) => Finding[]; packages: PackageFiles }> {
  const ruleSet = fileRules();
  const packages = new PackageFiles();
  const scanned: ScannedFile[] = [];
  const result: TreeAuditResult = { findings: [], files: 0, bytes: 0, problems: [] };
  for await (const file of tree.entries(options.signal)) {
    if (options.signal?.aborted === true) throw new CancelledError();
    result.files++;
    const scan = await auditEntry(file, ruleSet, packages, options, result);
    if (scan !== undefined && scan.matches.length > 0) scanned.push({ path: file.entry.path, scan });
  }
  for (const rule of ruleSet) result.findings.push(...(rule.finish?.() ?? []));
  const judge = (files: ScannedFile[]): Finding[] => files.filter((f) => !packages.isStock(f.path, f.scan.md5)).flatMap(({ path, scan }) => scan.matches.map((m): Finding => ({
    rule: m.rule, severity: m.severity, message: m.message, excerpt: m.excerpt,
    location: { kind: "file", path, ...(m.line === undefined ? {} : { line: m.line }) },
  })));
  result.findings.push(...judge(scanned));
  return { ...result, judge, packages };
}

async function auditEntry(file: TreeFile, ruleSet: FileRule[], packages: PackageFiles, options: TreeAuditOptions, result: TreeAuditResult): Promise<FileScan | undefined> {
  const { entry } = file;
  const wanting = ruleSet.map((rule) => ({ rule, bytes: rule.wants(entry) })).filter((w): w is { rule: FileRule; bytes: number } => w.bytes !== undefined);
  const packageBytes = packages.wants(entry);
  const scan = entry.type === "file" && entry.size > 0 && options.scanContent(entry);
  const headBytes = Math.max(packageBytes ?? 0, ...wanting.map((w) => w.bytes));
  let head = "";
  const keep = (text: string): void => { head = text; };
  let scanned: FileScan | undefined;
  if (scan) {
    scanned = await scanFileContent(entry.path, keepHead(file.read(), headBytes, keep, false), options.signal);
    result.bytes += scanned.bytes;
    result.problems.push(...scanned.problems);
  } else if (headBytes > 0) {
    for await (const _ of keepHead(file.read(), headBytes, keep, true)) { /* only the head is wanted */ }
  }
  if (packageBytes !== undefined) packages.visit(entry, head);
  for (const { rule, bytes } of wanting) result.findings.push(...rule.visit(entry, bytes > 0 ? head : undefined));
  return scanned;
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
