import { mkdtemp, open, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { KilnError } from "../errors.js";
import { exec } from "../system/exec.js";
import { requireTools } from "../system/host-tools.js";
import { applyBaseline, type Baseline } from "./judging/baseline.js";
import type { Finding } from "./finding.js";
import { auditRawImage } from "./raw-image-audit.js";
import { forgetScannedContent } from "./candidates/file-content.js";
import type { AuditResult } from "./report/audit-result.js";
import { defaultLimits, type AuditLimits } from "./judging/incomplete.js";
import { rules, type Severity } from "./rules.js";
import { StockFiles } from "./judging/package-files.js";
import type { RecordedBase } from "./judging/recorded-base.js";
import { compressionOf } from "./sources/decompress.js";
import { DirectoryTree } from "./sources/directory-tree.js";
import { TarTree } from "./sources/tar-tree.js";
import { auditTree, type TreeAuditResult } from "./tree-audit.js";

export interface AuditOptions {
  failOn: Severity;
  baseline?: Baseline;
  signal?: AbortSignal;
  /** Where a qcow2/vmdk/vhdx image is converted to raw for reading (default: the system's). */
  tempDirectory?: string;
  /** One line per phase of a long audit, for people watching. */
  progress?: (message: string) => void;
  /** The base kiln recorded before provisioning: the only ground for a stock-file exemption. */
  recordedBase?: RecordedBase;
  /** Lowered limits, for tests: reaching one is an audit-incomplete finding. */
  limits?: Partial<AuditLimits>;
}

/** Disk formats qemu-img turns into raw, by their magic bytes. */
const virtualDisks: { format: string; magic: string }[] = [
  { format: "qcow2", magic: "QFI\xfb" },
  { format: "vmdk", magic: "KDMV" },
  { format: "vhdx", magic: "vhdxfile" },
];

/**
 * Examines an image (a directory, a tar archive, a raw disk or filesystem image, or a virtual
 * disk) and returns every finding. Bad input is a KilnError with exit code 2.
 */
export async function auditImage(path: string, options: AuditOptions): Promise<AuditResult> {
  const started = Date.now();
  // Each audit judges its image afresh: nothing remembered from an earlier one (a benchmark's rounds).
  forgetScannedContent();
  const stock = new StockFiles(options.recordedBase);
  const { format, audit } = await asInputError(() => auditByFormat(path, options, stock));
  const findings = distinct(withoutEchoes(audit.findings));
  const { kept, accepted } = options.baseline === undefined ? { kept: findings, accepted: [] } : applyBaseline(options.baseline, findings);
  return {
    image: path, format, findings: kept, accepted, filesScanned: audit.files, bytesScanned: audit.bytes,
    seconds: (Date.now() - started) / 1000, failOn: options.failOn, problems: audit.problems, exemptions: stock.describe(),
  };
}

async function auditByFormat(path: string, options: AuditOptions, stock: StockFiles): Promise<{ format: string; audit: TreeAuditResult }> {
  const limits = { ...defaultLimits, ...options.limits };
  const signal = { ...(options.signal === undefined ? {} : { signal: options.signal }), ...(options.progress === undefined ? {} : { progress: options.progress }), stock, limits };
  const stats = await stat(path);
  if (stats.isDirectory()) {
    options.progress?.(`reading the directory tree ${path}`);
    return { format: "directory", audit: await auditTree(new DirectoryTree(path), { scanContent: () => true, ...signal }) };
  }
  if (!stats.isFile() && !stats.isBlockDevice()) throw new KilnError("KILN_AUDIT_UNKNOWN_FORMAT", `${path} is neither a file nor a directory`);
  const handle = await open(path, "r");
  try {
    const head = Buffer.alloc(4096);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const start = head.subarray(0, bytesRead);
    if (start.toString("latin1", 257, 262) === "ustar" || compressionOf(start) !== undefined) {
      options.progress?.(`reading the tar archive ${path}`);
      return { format: "tar archive", audit: await auditTree(new TarTree(path), { scanContent: () => true, ...signal }) };
    }
    const disk = virtualDisks.find((d) => start.toString("latin1", 0, d.magic.length) === d.magic);
    if (disk !== undefined) return { format: `${disk.format} disk image`, audit: await auditVirtualDisk(path, disk.format, options, stock) };
    const size = stats.isBlockDevice() ? (await handle.stat({ bigint: false })).size : stats.size;
    const audit = await auditRawImage(handle, path, size, signal);
    const ext = audit.volumes.filter((v) => v.filesystem === "ext").length;
    return { format: audit.volumes.length === 1 && audit.volumes[0]?.index === undefined ? "raw ext filesystem image" : `raw disk image (${audit.volumes.length} partitions, ${ext} ext)`, audit };
  } finally {
    await handle.close();
  }
}

/** Offsets in findings are then offsets in the raw form qemu-img writes, which the report says. */
async function auditVirtualDisk(path: string, format: string, options: AuditOptions, stock: StockFiles): Promise<TreeAuditResult> {
  await requireTools([{ command: "qemu-img", debianPackage: "qemu-utils", purpose: `reads ${format} images` }]);
  const scratch = await mkdtemp(join(options.tempDirectory ?? tmpdir(), "kiln-audit-"));
  options.progress?.(`converting the ${format} image to raw with qemu-img`);
  try {
    const raw = join(scratch, `${basename(path)}.raw`);
    await exec("qemu-img", ["convert", "-f", format, "-O", "raw", path, raw], { what: `qemu-img convert of ${path}`, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    const handle = await open(raw, "r");
    try {
      const audit = await auditRawImage(handle, raw, (await handle.stat()).size, { ...(options.signal === undefined ? {} : { signal: options.signal }), ...(options.progress === undefined ? {} : { progress: options.progress }), stock, limits: { ...defaultLimits, ...options.limits } });
      audit.problems.push(`${format} image: byte offsets are those of its raw form (qemu-img convert -O raw)`);
      return audit;
    } finally {
      await handle.close();
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * A file found by a specific rule is reported by that rule alone: a host key is not also "a
 * private key", and an .aws/credentials file is not also "an AWS key".
 */
function withoutEchoes(findings: Finding[]): Finding[] {
  const specific = new Set(findings.filter((f) => f.rule === rules.credentialsFile || f.rule === rules.sshHostKey).map((f) => f.location.kind === "file" ? f.location.path : ""));
  const echoes = new Set<string>([rules.token.id, rules.privateKey.id, rules.encryptedPrivateKey.id, rules.awsCredentials.id, rules.awsKeyId.id, rules.secretAssignment.id]);
  return findings.filter((f) => f.location.kind !== "file" || !specific.has(f.location.path) || !echoes.has(f.rule.id));
}

/** A file scanned twice (a small compressed file whose text is stored as is) reports once. */
function distinct(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = JSON.stringify([f.rule.id, f.location, f.message]);
    return !seen.has(key) && Boolean(seen.add(key));
  });
}

/** Reading errors of the input are the user's to fix: exit code 2, the path named, no stack. */
async function asInputError<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof KilnError) {
      if (!error.code.startsWith("KILN_AUDIT_")) throw error;
      throw new KilnError(error.code, error.message, { exitCode: 2, cause: error, ...(error.hint === undefined ? {} : { hint: error.hint }) });
    }
    const errno = error as NodeJS.ErrnoException;
    if (errno.code === "ENOENT") throw new KilnError("KILN_AUDIT_NOT_FOUND", `no such file or directory: ${errno.path ?? "the image"}`, { exitCode: 2, hint: "give the path of a directory, tar archive or disk image" });
    if (errno.code === "EACCES" || errno.code === "EPERM") throw new KilnError("KILN_AUDIT_PERMISSION", `cannot read ${errno.path ?? "the image"}: permission denied`, { exitCode: 2, hint: "run kiln audit as root, or fix the file's permissions" });
    if (errno.code === "EISDIR" || errno.code === "ENOTDIR") throw new KilnError("KILN_AUDIT_UNKNOWN_FORMAT", `${errno.path ?? "the image"}: ${errno.message}`, { exitCode: 2 });
    throw error;
  }
}
