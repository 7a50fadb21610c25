import { constants, type Stats } from "node:fs";
import { lstat, open, readlink, type FileHandle } from "node:fs/promises";
import { join, posix } from "node:path";
import { KilnError } from "../errors.js";

/** How many links one lookup may follow, as the kernel allows (ELOOP beyond). */
const maxLinks = 40;

/** What a lookup found: the path inside the tree with every link resolved, and its lstat. */
export interface TreeLookup {
  /** "/"-separated, absolute inside the tree, no link in it: "/usr/lib/os-release". */
  path: string;
  /** The host path of that object, under the tree's root. */
  hostPath: string;
  /** undefined when the path does not exist. */
  stats: Stats | undefined;
}

/**
 * Resolves `path` inside the tree at `root` as a chroot would, one component at a time with
 * lstat: a link's absolute target starts again at the tree's root and `..` never climbs above
 * it, so no link the image holds can lead to a file of the build host.
 */
export async function lookUpInTree(root: string, path: string): Promise<TreeLookup> {
  return walk(root, path, () => undefined);
}

/**
 * Whether following `path` from the directory `root` ever leaves it: an absolute link target or
 * a `..` above `root`, looked up as the kernel would (a missing name is taken lexically).
 */
export async function leadsOutOf(root: string, path: string): Promise<boolean> {
  const escaped = Symbol("escaped");
  try {
    await walk(root, path, () => { throw escaped; });
    return false;
  } catch (error) {
    if (error === escaped) return true;
    throw error;
  }
}

/** One component at a time with lstat; `atRoot` is called where the walk would leave the root. */
async function walk(root: string, path: string, atRoot: () => void): Promise<TreeLookup> {
  const pending = path.split("/");
  if (path.startsWith("/")) pending.shift();
  const done: string[] = [];
  let links = 0;
  let stats: Stats | undefined;
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === "" || name === ".") continue;
    if (name === "..") {
      if (done.length === 0) atRoot();
      done.pop();
      continue;
    }
    const hostPath = join(root, ...done, name);
    stats = await lstat(hostPath).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT" || error.code === "ENOTDIR") return undefined;
      throw error;
    });
    if (stats === undefined || (!stats.isDirectory() && !stats.isSymbolicLink() && pending.some((p) => p !== "" && p !== "."))) {
      // What is missing is missing inside the tree; the rest is only named, never looked up.
      const rest = [...done, name, ...pending].join("/");
      if (posix.normalize(rest).startsWith("../") || posix.normalize(rest) === "..") atRoot();
      const inside = posix.normalize(`/${rest}`);
      return { path: inside, hostPath: join(root, inside), stats: undefined };
    }
    if (stats.isSymbolicLink()) {
      if (++links > maxLinks) throw refused(path, `has more than ${maxLinks} links on its way (a loop?)`);
      const target = await readlink(hostPath);
      if (target.startsWith("/")) {
        atRoot();
        done.length = 0;
      }
      pending.unshift(...target.split("/"));
      continue;
    }
    done.push(name);
  }
  return { path: `/${done.join("/")}`, hostPath: join(root, ...done), stats: stats ?? (await lstat(root)) };
}

/**
 * Opens a regular file of the tree for reading: resolved inside the tree, then opened without
 * following a link and without blocking (a fifo would wait for a writer forever, in a thread
 * Ctrl-C cannot stop), and checked again on the open descriptor. Fifos, devices and sockets
 * are refused before they are opened (opening some devices does something). Undefined when
 * the file does not exist.
 */
export async function openTreeFile(root: string, path: string): Promise<FileHandle | undefined> {
  const found = await lookUpInTree(root, path);
  if (found.stats === undefined) return undefined;
  if (!found.stats.isFile()) throw refused(path, `is ${kindOf(found.stats)}`);
  const handle = await open(found.hostPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY).catch((error: NodeJS.ErrnoException) => {
    // ELOOP: it became a link since the lookup; ENOENT: it went away.
    if (error.code === "ELOOP" || error.code === "ENOENT" || error.code === "ENXIO") throw refused(path, "changed while kiln opened it");
    throw error;
  });
  const opened = await handle.stat();
  if (!opened.isFile() || opened.ino !== found.stats.ino || opened.dev !== found.stats.dev) {
    await handle.close();
    throw refused(path, "changed while kiln opened it");
  }
  return handle;
}

/** The text of a regular file of the tree, read as data (see openTreeFile); undefined when missing. */
export async function readTreeFile(root: string, path: string): Promise<string | undefined> {
  const handle = await openTreeFile(root, path);
  if (handle === undefined) return undefined;
  try {
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}

export function kindOf(stats: Stats): string {
  return stats.isDirectory() ? "a directory" : stats.isFIFO() ? "a fifo" : stats.isCharacterDevice() ? "a character device"
    : stats.isBlockDevice() ? "a block device" : stats.isSocket() ? "a socket" : stats.isSymbolicLink() ? "a symbolic link" : "a regular file";
}

function refused(path: string, why: string): KilnError {
  return new KilnError("KILN_TREE_FILE_REFUSED", `the image's ${posix.normalize(`/${path}`)} ${why}: kiln reads only regular files from the image's tree`, {
    hint: "a provisioner replaced it; leave it a regular file, or remove it",
  });
}
