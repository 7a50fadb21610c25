import { lstat, lutimes, readdir } from "node:fs/promises";
import { join } from "node:path";

export interface TreeUsage {
  /** Bytes the tree occupies on disk (allocated blocks, directories included). */
  bytes: number;
  /** Files, directories, links and other entries. */
  entries: number;
}

/**
 * Clamps every modification time later than `epoch` down to it (as reproducible-builds tools
 * do), so files a build wrote carry no build time; and measures the tree on the way.
 */
export async function clampTimesAndMeasure(root: string, epoch: number): Promise<TreeUsage> {
  const usage: TreeUsage = { bytes: 0, entries: 0 };
  const visit = async (path: string): Promise<void> => {
    const info = await lstat(path);
    usage.entries += 1;
    usage.bytes += Math.max(info.blocks * 512, info.isDirectory() ? 4096 : 0);
    if (info.isDirectory()) {
      // Siblings in parallel: the walk is bound by system-call latency, not by the disk.
      const names = await readdir(path);
      await Promise.all(names.map((name) => visit(join(path, name))));
    }
    // Directories after their content: writing children would move their times again.
    if (info.mtimeMs / 1000 > epoch) await lutimes(path, epoch, epoch);
  };
  await visit(root);
  return usage;
}
