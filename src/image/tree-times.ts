import type { Stats } from "node:fs";
import { lstat, lutimes, readdir } from "node:fs/promises";
import { join } from "node:path";

export interface TreeUsage {
  /** Bytes the tree occupies on disk (allocated blocks, directories included). */
  bytes: number;
  /** Files, directories, links and other entries. */
  entries: number;
}

/**
 * Visits every entry of a tree without following symlinks, a directory after its content.
 * Siblings are visited in parallel: the walk is bound by system-call latency, not by the disk.
 */
async function walk(path: string, visit: (path: string, info: Stats) => Promise<void> | void): Promise<void> {
  const info = await lstat(path);
  if (info.isDirectory()) {
    const names = await readdir(path);
    await Promise.all(names.map((name) => walk(join(path, name), visit)));
  }
  await visit(path, info);
}

/**
 * Clamps every modification time later than `epoch` down to it (as reproducible-builds tools
 * do), so files a build wrote carry no build time; and measures the tree on the way.
 * Directories are clamped after their content, whose writing would move their times again.
 */
export async function clampTimesAndMeasure(root: string, epoch: number): Promise<TreeUsage> {
  const usage: TreeUsage = { bytes: 0, entries: 0 };
  await walk(root, async (path, info) => {
    usage.entries += 1;
    usage.bytes += Math.max(info.blocks * 512, info.isDirectory() ? 4096 : 0);
    if (info.mtimeMs / 1000 > epoch) await lutimes(path, epoch, epoch);
  });
  return usage;
}

/** The newest modification time in a tree, in whole seconds: a given base's natural epoch. */
export async function newestModification(root: string): Promise<number> {
  let newest = 0;
  await walk(root, (_path, info) => {
    newest = Math.max(newest, Math.floor(info.mtimeMs / 1000));
  });
  return newest;
}
