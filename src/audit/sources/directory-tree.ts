import { constants, type Stats } from "node:fs";
import { lstat, open, readdir, readlink, stat, type FileHandle } from "node:fs/promises";
import { dataExtents, type ByteRange } from "./data-extents.js";
import { join } from "node:path";
import { CancelledError, KilnError } from "../../errors.js";
import type { Finding } from "../finding.js";
import type { ImageTree, TreeEntry, TreeFile } from "./image-tree.js";
import { incomplete } from "../judging/incomplete.js";
import { directoryXattrs, type XattrMap } from "./directory-xattrs.js";

const chunkSize = 1024 * 1024;

/**
 * An image unpacked in a directory, walked depth first in name order with lstat: symlinks are
 * reported, never followed. A file's second and later hard links are reported as "other" with the
 * first one as linkTarget, as tar does, so their content is read once.
 */
export class DirectoryTree implements ImageTree {
  readonly description: string;
  readonly gaps: Finding[] = [];
  private xattrs: XattrMap = new Map();

  constructor(private readonly root: string) {
    this.description = `directory ${root}`;
  }

  async *entries(signal?: AbortSignal): AsyncGenerator<TreeFile, void, undefined> {
    const seen = new Map<string, string>();
    // The root itself may be given as a symlink; below it nothing is followed.
    const rootStats = await this.checked("/", () => stat(this.root));
    if (!rootStats.isDirectory()) throw new KilnError("KILN_AUDIT_NOT_DIRECTORY", `${this.root} is not a directory`);
    const xattrs = await directoryXattrs(this.root, signal);
    if (xattrs === undefined) this.gaps.push(incomplete("unreadable", "/", "extended attributes were not read: getfattr is missing (apt-get install attr)"));
    this.xattrs = xattrs ?? new Map();
    yield* this.walk("/", rootStats, seen, signal);
  }

  private async *walk(path: string, stats: Stats, seen: Map<string, string>, signal: AbortSignal | undefined): AsyncGenerator<TreeFile, void, undefined> {
    if (signal?.aborted) throw new CancelledError();
    yield await this.file(path, stats, seen, signal);
    if (!stats.isDirectory()) return;
    const names = await this.checked(path, () => readdir(this.onDisk(path)));
    names.sort();
    for (const name of names) {
      const child = path === "/" ? `/${name}` : `${path}/${name}`;
      let childStats: Stats;
      try {
        childStats = await lstat(this.onDisk(child));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") continue; // removed while walking
        throw this.failure(child, error);
      }
      yield* this.walk(child, childStats, seen, signal);
    }
  }

  private async file(path: string, stats: Stats, seen: Map<string, string>, signal: AbortSignal | undefined): Promise<TreeFile> {
    const entry: TreeEntry = { path, type: "other", mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, size: 0 };
    const xattrs = this.xattrs.get(this.onDisk(path));
    if (xattrs !== undefined) entry.xattrs = xattrs;
    if (stats.isDirectory()) entry.type = "directory";
    else if (stats.isSymbolicLink()) {
      entry.type = "symlink";
      entry.linkTarget = await this.checked(path, () => readlink(this.onDisk(path)));
    } else if (stats.isFile()) {
      const inode = `${stats.dev}:${stats.ino}`;
      const first = stats.nlink > 1 ? seen.get(inode) : undefined;
      if (first !== undefined) entry.linkTarget = first;
      else {
        if (stats.nlink > 1) seen.set(inode, path);
        entry.type = "file";
        entry.size = stats.size;
      }
    }
    return { entry, read: () => (entry.type === "file" ? this.content(path, entry.size, signal) : none()) };
  }

  private async *content(path: string, size: number, signal: AbortSignal | undefined): AsyncGenerator<Buffer, void, undefined> {
    // O_NOFOLLOW and O_NONBLOCK: a file swapped for a symlink or a fifo since lstat is neither followed nor waited on.
    const handle = await this.checked(path, () => open(this.onDisk(path), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK));
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) return;
      // A sparse file (fewer blocks than its size) is read by its data extents: holes are zeros.
      const data = stats.blocks * 512 < stats.size ? await dataExtents(this.onDisk(path), signal) : undefined;
      if (data !== undefined) {
        yield* sparseContent(handle, data, stats.size, signal);
        return;
      }
      // Read until the end, not just `size` bytes: the file may have grown since lstat.
      for (let left = size; ;) {
        if (signal?.aborted) throw new CancelledError();
        // Sized to the file, so that a small file's chunk does not hold a megabyte.
        const chunk = Buffer.allocUnsafe(Math.min(chunkSize, left > 0 ? left : 8192));
        const { bytesRead } = await this.checked(path, () => handle.read(chunk, 0, chunk.length, null));
        if (bytesRead === 0) return;
        left -= bytesRead;
        yield chunk.subarray(0, bytesRead);
      }
    } finally {
      await handle.close();
    }
  }

  private onDisk(path: string): string {
    return join(this.root, path);
  }

  private async checked<T>(path: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      throw this.failure(path, error);
    }
  }

  private failure(path: string, error: unknown): unknown {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM") return error;
    return new KilnError("KILN_AUDIT_PERMISSION", `cannot read ${path} in ${this.root}: permission denied`, {
      hint: "run kiln audit as root (images hold root-only files)",
      cause: error,
    });
  }
}

/**
 * The data extents of a sparse file in order, one zero byte standing for each hole (a hole is
 * zeros, which no secret runs across). The content's checksum is then not the file's: such a
 * file is never taken for a stock one.
 */
async function* sparseContent(handle: FileHandle, data: readonly ByteRange[], size: number, signal: AbortSignal | undefined): AsyncGenerator<Buffer, void, undefined> {
  let previousEnd = 0;
  for (const [from, to] of data) {
    if (from > previousEnd) yield Buffer.alloc(1);
    for (let at = from; at < Math.min(to, size);) {
      if (signal?.aborted) throw new CancelledError();
      const chunk = Buffer.allocUnsafe(Math.min(chunkSize, Math.min(to, size) - at));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, at);
      if (bytesRead === 0) return;
      at += bytesRead;
      yield chunk.subarray(0, bytesRead);
    }
    previousEnd = to;
  }
  if (size > previousEnd) yield Buffer.alloc(1);
}

async function* none(): AsyncGenerator<Buffer, void, undefined> {
  // nothing: only files have content
}
