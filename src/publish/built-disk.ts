import { lstat, readFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { KilnError } from "../errors.js";
import { sha256File } from "../system/sha256.js";

/** A disk kiln built, as its manifest and audit report vouch for it. */
export interface BuiltDisk {
  path: string;
  bytes: number;
  sha256: string;
  boots: ("bios" | "uefi")[];
  manifestPath: string;
  /** The build's own audit of these bytes passed (false: it was skipped). */
  auditPassed: boolean;
}

const refuse = (message: string, hint: string): KilnError => new KilnError("KILN_PUBLISH_MISMATCH", message, { exitCode: 2, hint });

/**
 * Checks a disk given to `kiln publish`: a regular file that only its owner (this user or root)
 * can change, listed as the raw artifact of the manifest beside it with the sha256 it has now,
 * and — when the build audited it — an audit report beside it that passed.
 */
export async function checkBuiltDisk(path: string, signal: AbortSignal): Promise<BuiltDisk> {
  const stats = await lstat(path).catch(() => undefined);
  if (stats === undefined) throw refuse(`${path} does not exist`, "give the disk.raw of a kiln build's output directory");
  if (!stats.isFile()) throw refuse(`${path} is not a regular file`, "give the disk.raw of a kiln build's output directory (not a link or a device)");
  const uid = process.geteuid?.() ?? 0;
  if ((stats.uid !== uid && stats.uid !== 0) || (stats.mode & 0o022) !== 0) {
    throw refuse(`${path} can be changed by ${stats.uid !== uid && stats.uid !== 0 ? `its owner, uid ${stats.uid}` : "other users (group or world writable)"}: the bytes kiln checks could be changed before they are uploaded`, `copy it to a file of your own (chmod 644), or publish it as its owner`);
  }
  const manifestPath = join(dirname(path), "manifest.json");
  const manifest = await readFile(manifestPath, "utf8").then((t) => JSON.parse(t) as Manifest, () => undefined);
  if (manifest === undefined) throw refuse(`no readable manifest.json beside ${path}`, "kiln publish takes a disk kiln built, in its output directory with its manifest.json");
  const listed = manifest.artifacts?.find((a) => a.format === "raw" && a.path === basename(path));
  if (listed === undefined) throw refuse(`${manifestPath} lists no raw disk named ${basename(path)}`, "give the disk.raw the manifest lists");
  const sha256 = await sha256File(path, signal);
  if (sha256 !== listed.sha256) throw refuse(`${path} has sha256 ${sha256}, and its manifest says ${listed.sha256 ?? "nothing"}: it changed since it was built`, "build it again; kiln publishes only the bytes it built and audited");
  let auditPassed = false;
  if (manifest.audit?.report !== undefined) {
    const report = await readFile(join(dirname(path), manifest.audit.report), "utf8").then((t) => JSON.parse(t) as { passed?: boolean }, () => undefined);
    if (report?.passed !== true) throw refuse(`the build's audit report ${manifest.audit.report} ${report === undefined ? "is missing or unreadable" : "did not pass"}`, "fix what the audit found and build again");
    auditPassed = true;
  }
  const boots = (manifest.disk?.boot ?? []).filter((b): b is "bios" | "uefi" => b === "bios" || b === "uefi");
  return { path, bytes: stats.size, sha256, boots, manifestPath, auditPassed };
}

interface Manifest {
  artifacts?: { format?: string; path?: string; sha256?: string }[];
  audit?: { report?: string; skipped?: boolean };
  disk?: { boot?: string[] };
}
