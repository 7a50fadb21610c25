import { createHash } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { lstat, open, readFile, realpath, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { KilnError } from "../errors.js";
import { ensureSafeDirectory } from "../system/private-directory.js";

/** A disk kiln built, as its manifest and audit report vouch for it. */
export interface BuiltDisk {
  path: string;
  bytes: number;
  sha256: string;
  boots: ("bios" | "uefi")[];
  manifestPath: string;
  /** The build's own audit of these bytes passed (false: it was skipped). */
  auditPassed: boolean;
  /** The file hashed, so the upload can tell it opened the same one. */
  identity: { dev: number; ino: number };
}

const refuse = (message: string, hint: string): KilnError => new KilnError("KILN_PUBLISH_MISMATCH", message, { exitCode: 2, hint });
/** A manifest or audit report is a few KiB; one far larger is not kiln's. */
const maxMetadataBytes = 16 * 1024 * 1024;

/**
 * Checks a disk given to `kiln publish`: a regular file that only its owner (this user or root)
 * can change, in a directory (and every directory above it) no other user can rename things in,
 * listed as the raw artifact of the manifest beside it with the sha256 it has now, and — when
 * the build audited it — an audit report beside it that passed. The path returned is the real
 * one (links above it resolved), and the file hashed is the one checked: opened without
 * following a link, and the same file (device, inode, size, time) after the hash as before.
 */
export async function checkBuiltDisk(given: string, signal: AbortSignal): Promise<BuiltDisk> {
  const stats = await lstat(given).catch(() => undefined);
  if (stats === undefined) throw refuse(`${given} does not exist`, "give the disk.raw of a kiln build's output directory");
  if (!stats.isFile()) throw refuse(`${given} is not a regular file`, "give the disk.raw of a kiln build's output directory (not a link or a device)");
  const uid = process.geteuid?.() ?? 0;
  if ((stats.uid !== uid && stats.uid !== 0) || (stats.mode & 0o022) !== 0) {
    throw refuse(`${given} can be changed by ${stats.uid !== uid && stats.uid !== 0 ? `its owner, uid ${stats.uid}` : "other users (group or world writable)"}: the bytes kiln checks could be changed before they are uploaded`, `copy it to a file of your own (chmod 644), or publish it as its owner`);
  }
  // Another user who can rename things in the directory could swap the disk (or its manifest and
  // audit report) between the checks here and the upload.
  // Links above the disk are resolved once, here; the real path is what the publish uses after.
  const directory = await ensureSafeDirectory(await realpath(dirname(given))).catch((error: unknown) => {
    if (!(error instanceof KilnError) || error.code !== "KILN_UNSAFE_DIRECTORY") throw error;
    throw refuse(`${error.message.replace(/^refusing to build in/, "refusing to publish from")}: the disk could be swapped between its check and its upload`, `move the build's output directory (disk, manifest.json, audit.json) to a directory only root or uid ${uid} can change`);
  });
  const path = join(directory, basename(given));
  const manifestPath = join(directory, "manifest.json");
  const manifest = await readMetadata(manifestPath) as Manifest | undefined;
  if (manifest === undefined) throw refuse(`no readable manifest.json beside ${path} (a small file of your own or root's, not a link)`, "kiln publish takes a disk kiln built, in its output directory with its manifest.json");
  const listed = manifest.artifacts?.find((a) => a.format === "raw" && a.path === basename(path));
  if (listed === undefined) throw refuse(`${manifestPath} lists no raw disk named ${basename(path)}`, "give the disk.raw the manifest lists");
  const sha256 = await sha256Checked(path, stats, signal);
  if (sha256 !== listed.sha256) throw refuse(`${path} has sha256 ${sha256}, and its manifest says ${listed.sha256 ?? "nothing"}: it changed since it was built`, "build it again; kiln publishes only the bytes it built and audited");
  let auditPassed = false;
  if (manifest.audit?.report !== undefined) {
    const name = manifest.audit.report;
    // The report kiln writes is a file beside the disk: a path elsewhere is someone else's word.
    const report = typeof name === "string" && name !== "" && !name.includes("/") && name !== "." && name !== ".." ? await readMetadata(join(directory, name)) as { passed?: boolean } | undefined : undefined;
    if (report?.passed !== true) throw refuse(`the build's audit report ${String(name)} ${report === undefined ? "is missing, unreadable or not a file beside the disk" : "did not pass"}`, "fix what the audit found and build again");
    auditPassed = true;
  }
  const boots = (manifest.disk?.boot ?? []).filter((b): b is "bios" | "uefi" => b === "bios" || b === "uefi");
  return { path, bytes: stats.size, sha256, boots, manifestPath, auditPassed, identity: { dev: stats.dev, ino: stats.ino } };
}

/** The sha256 of the very file lstat saw: opened without following a link, unchanged while read. */
async function sha256Checked(path: string, checked: Stats, signal: AbortSignal): Promise<string> {
  const swapped = (): KilnError => refuse(`${path} was replaced or changed while kiln checked it`, "do not change the disk while kiln publishes it; run kiln publish again");
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => { throw swapped(); });
  try {
    const opened = await handle.stat();
    const same = (s: Stats): boolean => s.dev === checked.dev && s.ino === checked.ino && s.size === checked.size && s.mtimeMs === checked.mtimeMs;
    if (!same(opened)) throw swapped();
    const hash = createHash("sha256");
    for await (const chunk of handle.createReadStream({ highWaterMark: 4 * 1024 * 1024, autoClose: false, start: 0, signal })) hash.update(chunk as Buffer);
    if (!same(await handle.stat()) || !same(await lstat(path))) throw swapped();
    return hash.digest("hex");
  } finally {
    await handle.close();
  }
}

/** A small JSON file of our own (or root's), not a link, a device or a FIFO: else undefined. */
async function readMetadata(path: string): Promise<unknown> {
  const stats = await lstat(path).catch(() => undefined);
  const uid = process.geteuid?.() ?? 0;
  if (stats === undefined || !stats.isFile() || stats.size > maxMetadataBytes || (stats.uid !== uid && stats.uid !== 0) || (stats.mode & 0o022) !== 0) return undefined;
  return readFile(path, "utf8").then((t) => JSON.parse(t) as unknown, () => undefined);
}

/**
 * (Here, not with the gate, because `kiln audit` of a local file loads no AWS SDK.) A file of accepted findings is checked before it is read: a regular file of a sane size (a
 * FIFO would hang, /dev/zero would fill memory), and — when it lets findings past the gate before
 * sharing (`shareGate`) — one only its reader or root can change: else another local user could
 * write into it the very findings that should stop the share.
 */
export async function checkFindingsFile(file: string, option: string, shareGate: boolean): Promise<void> {
  const refuse = (problem: string, hint: string): KilnError => new KilnError("KILN_BASELINE_UNREADABLE", `cannot use ${option} ${file}: ${problem}`, { exitCode: 2, hint });
  const followed = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw refuse(error.code === "ENOENT" ? "no such file" : error.code ?? error.message, "pass the path of a YAML or JSON baseline file");
  });
  if (!followed.isFile()) throw refuse("it is not a regular file", "pass the path of a YAML or JSON baseline file");
  if (followed.size > 16 * 1024 * 1024) throw refuse(`it is ${followed.size} bytes, far more than a baseline`, "pass the path of a YAML or JSON baseline file");
  if (!shareGate) return;
  const uid = process.geteuid?.() ?? 0;
  for (const stats of [followed, await lstat(file)]) {
    if (stats.isSymbolicLink()) continue;
    if ((stats.uid !== uid && stats.uid !== 0) || (stats.mode & 0o022) !== 0) {
      throw refuse(`${stats.uid !== uid && stats.uid !== 0 ? `it is owned by another user (uid ${stats.uid})` : "it is writable by group or others"}, who could accept any finding in it and so share what the audit would stop`, `use a baseline file of your own (chmod 644)`);
    }
  }
}

interface Manifest {
  artifacts?: { format?: string; path?: string; sha256?: string }[];
  audit?: { report?: unknown; skipped?: boolean };
  disk?: { boot?: string[] };
}
