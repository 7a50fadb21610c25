import { lstat, mkdir, mkdtemp, readFile, realpath } from "node:fs/promises";
import type { Stats } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { KilnError } from "../errors.js";
import { inUserNamespace } from "./user-namespace.js";

/**
 * Directories kiln creates things in, as root, must not be changeable by another local user:
 * otherwise that user swaps a directory for a symlink mid-build and kiln writes, unpacks or runs
 * where they choose.
 *
 * The rule (OpenSSH's safe_path plus the classic /tmp rule), checked with lstat, never following a link:
 * - every component from / down to the directory is a real directory owned by root or by us;
 * - none is writable by group or others unless it is sticky (like /tmp, /var/tmp): there others
 *   cannot rename or remove what we own, and every entry kiln makes in such a directory is
 *   either checked to be ours (the next component) or made by mkdtemp (a build's directories);
 * - symlinks above the directory are resolved once (realpath) and the real path is what kiln
 *   uses afterwards; the directory itself must not be a symlink.
 *
 * Rootless builds run in a user namespace where the host's root and every other user show as
 * the overflow uid, so there a directory owned by it is accepted: `rebuildRootless` ran this
 * same check on the work and cache directories as the real user on the host before entering
 * the namespace, and what kiln makes inside is still checked to be its own.
 */

/** Makes `directory` (and missing parents, 0700) if needed, checks it is safe, and returns its real path. */
export async function ensureSafeDirectory(directory: string): Promise<string> {
  const wanted = resolve(directory);
  let existing = dirname(wanted);
  while (existing !== dirname(existing) && (await lstatOrUndefined(existing)) === undefined) existing = dirname(existing);
  const real = await realpath(existing);
  const owners = await acceptedOwners();
  let path = "/";
  await checkComponent(path, await lstat(path), owners);
  for (const name of real.split(sep).filter((n) => n !== "")) {
    path = join(path, name);
    await checkComponent(path, await lstat(path), owners);
  }
  const missing = relative(existing, wanted).split(sep).filter((n) => n !== "");
  for (const name of missing) {
    path = join(path, name);
    // Made 0700 if missing; one that exists already, or appears between our lstat and mkdir, is checked like any other.
    await mkdir(path, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => { if (error.code !== "EEXIST") throw error; });
    await checkComponent(path, await lstat(path), owners);
  }
  return path;
}

/**
 * Makes a new private directory (0700, ours, unpredictable name starting with `prefix`) inside
 * `parent`, after checking `parent` with ensureSafeDirectory. Returns its path.
 */
export async function makePrivateDirectory(parent: string, prefix: string): Promise<string> {
  const safeParent = await ensureSafeDirectory(parent);
  const made = await mkdtemp(join(safeParent, `${prefix}-`));
  const stats = await lstat(made);
  const uid = process.geteuid?.() ?? 0;
  if (!stats.isDirectory() || stats.uid !== uid || (stats.mode & 0o7777) !== 0o700) {
    throw unsafe(made, stats, `is not the private directory kiln just made (expected a directory owned by uid ${uid}, mode 0700)`);
  }
  return made;
}

/**
 * Whether `path` (in a directory ensureSafeDirectory checked) is a file kiln may trust, such as
 * a cached base it will unpack as root: false if absent; an error if it is a link, not a regular
 * file, another user's, or writable by anyone else (planted, or changeable after the check).
 */
export async function isOwnFile(path: string): Promise<boolean> {
  const stats = await lstatOrUndefined(path);
  if (stats === undefined) return false;
  const owners = await acceptedOwners();
  const problem = stats.isSymbolicLink() ? "is a symbolic link"
    : !stats.isFile() ? "is not a regular file"
    : !ownedByAccepted(stats, owners) ? `is owned by another user (uid ${stats.uid}), who could have put anything in it`
    : (stats.mode & 0o022) !== 0 ? "is writable by group or others" : undefined;
  if (problem === undefined) return true;
  const mode = (stats.mode & 0o7777).toString(8).padStart(4, "0");
  throw new KilnError("KILN_UNSAFE_DIRECTORY", `refusing to use ${path} (owner uid ${stats.uid}, mode ${mode}): it ${problem}`, {
    hint: `remove it (kiln makes it again), and keep the directory it is in to root or uid ${process.geteuid?.() ?? 0}`,
  });
}

interface AcceptedOwners { uid: number; outsideNamespace: number | undefined }

async function acceptedOwners(): Promise<AcceptedOwners> {
  const uid = process.geteuid?.() ?? 0;
  if (!(await inUserNamespace())) return { uid, outsideNamespace: undefined };
  const overflow = Number((await readFile("/proc/sys/kernel/overflowuid", "utf8").catch(() => "65534")).trim());
  return { uid, outsideNamespace: overflow };
}

/** Root's, ours, or (rootless) the host's as seen from our namespace. */
function ownedByAccepted(stats: Stats, owners: AcceptedOwners): boolean {
  return stats.uid === 0 || stats.uid === owners.uid || stats.uid === owners.outsideNamespace;
}

async function checkComponent(path: string, stats: Stats, owners: AcceptedOwners): Promise<void> {
  if (stats.isSymbolicLink()) throw unsafe(path, stats, "is a symbolic link", `point --work-dir (or KILN_WORK_DIR) at the real directory ${await realpath(path).catch(() => "it names")}`);
  if (!stats.isDirectory()) throw unsafe(path, stats, "is not a directory");
  if (!ownedByAccepted(stats, owners)) {
    throw unsafe(path, stats, `is owned by another user (uid ${stats.uid}), who could swap what kiln makes in it`);
  }
  if ((stats.mode & 0o022) !== 0 && (stats.mode & 0o1000) === 0) {
    throw unsafe(path, stats, "is writable by group or others and not sticky, so another user could rename what kiln makes in it");
  }
}

function unsafe(path: string, stats: Stats, problem: string, hint?: string): KilnError {
  const mode = (stats.mode & 0o7777).toString(8).padStart(4, "0");
  return new KilnError("KILN_UNSAFE_DIRECTORY", `refusing to build in ${path} (owner uid ${stats.uid}, mode ${mode}): it ${problem}`, {
    hint: hint ?? `use a directory only root or uid ${process.geteuid?.() ?? 0} can change: --work-dir DIR (or KILN_WORK_DIR), e.g. a new one kiln creates itself; or fix it with chown root:root and chmod 0700 ${path}`,
  });
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  return lstat(path).catch((error: NodeJS.ErrnoException) => { if (error.code === "ENOENT") return undefined; throw error; });
}
