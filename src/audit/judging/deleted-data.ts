import type { FileHandle } from "node:fs/promises";
import { readAt } from "../../system/read-at.js";
import type { Ext4Filesystem } from "../../image/ext4/ext4-filesystem.js";
import { judgeAt } from "./content-scanner.js";
import type { Finding, FindingLocation } from "../finding.js";
import type { RawHit } from "../candidates/raw-scan.js";
import { rules } from "../rules.js";
import type { WalkedFilesystem } from "../sources/walked-filesystem.js";

type RawArea = Extract<FindingLocation, { kind: "raw" }>["area"];

export type DeletedInodes = Awaited<ReturnType<Ext4Filesystem["deletedInodes"]>>;

export function areaOf(w: WalkedFilesystem, deleted: DeletedInodes, offset: number): { area: RawArea; inode?: number; formerPath?: string } {
  const block = Math.floor((offset - w.volume.offset) / w.fs.blockSize);
  const owner = w.fs.ownerOf(block);
  if (owner.kind === "journal") return { area: "journal" };
  const gone = deleted.find((d) => d.runs.some((r) => block >= r.physicalBlock && block < r.physicalBlock + r.blocks));
  if (gone !== undefined) return { area: "deleted-file", inode: gone.inode, ...(gone.formerPath === undefined ? {} : { formerPath: gone.formerPath }) };
  return { area: "unallocated" };
}

/** A candidate in bytes no live file owns, judged with only the bytes around it as context. */
export async function judgeRaw(handle: FileHandle, hit: RawHit, where: { area: RawArea; inode?: number; formerPath?: string; path?: string }): Promise<Finding[]> {
  const before = Math.min(hit.offset, 2048);
  const window = Buffer.alloc(before + 16 * 1024);
  const bytesRead = readAt(handle, window, hit.offset - before);
  const text = window.subarray(0, bytesRead).toString("latin1");
  return judgeAt(text, before, "unallocated").map((m): Finding => ({
    rule: m.rule.id === rules.awsKeyId.id ? m.rule : rules.deletedSecret,
    severity: m.rule.id === rules.awsKeyId.id ? m.severity : rules.deletedSecret.severity,
    message: `${m.message}, recoverable from ${where.area === "outside-filesystem" ? "bytes outside any ext filesystem" : where.area === "journal" ? "the filesystem journal" : where.area === "entry-slack" ? `the blocks of ${where.path ?? "a live entry"} beyond its content (no read of it returns them; dd does)` : "deleted data"}`,
    excerpt: m.excerpt,
    location: { kind: "raw", offset: hit.offset, ...where },
  }));
}

/** One finding per secret: a key id and its secret on the next line are one leak, not two. */
export function nearbyOnce(findings: Finding[]): Finding[] {
  const kept: Finding[] = [];
  for (const f of findings) {
    const last = kept.at(-1);
    if (last !== undefined && last.location.kind === "raw" && f.location.kind === "raw" && f.location.offset - last.location.offset < 4096 && last.rule === f.rule) continue;
    kept.push(f);
  }
  return kept;
}

/** Deleted inodes whose blocks still hold something: recoverable with icat by anyone. */
export async function deletedFiles(handle: FileHandle, w: WalkedFilesystem, deleted: DeletedInodes): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const d of deleted) {
    const first = d.runs[0];
    if (first === undefined) continue;
    const sample = Buffer.alloc(Math.min(64 * 1024, first.blocks * w.fs.blockSize));
    const offset = w.volume.offset + first.physicalBlock * w.fs.blockSize;
    readAt(handle, sample, offset);
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
