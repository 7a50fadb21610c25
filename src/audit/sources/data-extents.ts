import { exec } from "../../system/exec.js";
import { findTool } from "../../system/host-tools.js";

/** A byte range [start, end) of a file that holds data; the rest of a sparse file is holes. */
export type ByteRange = readonly [start: number, end: number];

/**
 * Where a file has data, from the filesystem's own extent map (FIEMAP, through e2fsprogs'
 * filefrag; -s flushes delayed allocation first). A hole reads as zeros and can hold no secret,
 * so a sparse image (as mke2fs writes them) is scanned for its data only. Undefined when the map
 * cannot be had (no filefrag, a filesystem without FIEMAP, a block device): scan every byte.
 */
export async function dataExtents(path: string, signal?: AbortSignal): Promise<ByteRange[] | undefined> {
  const filefrag = await findTool("filefrag");
  if (filefrag === undefined) return undefined;
  let stdout: string;
  try {
    ({ stdout } = await exec(filefrag, ["-s", "-e", path], { what: "filefrag", ...(signal === undefined ? {} : { signal }) }));
  } catch {
    return undefined;
  }
  return parseFilefrag(stdout);
}

/** Parses `filefrag -e`; anything unexpected gives undefined, never a guess. */
export function parseFilefrag(output: string): ByteRange[] | undefined {
  const unit = /^File size of .* is \d+ \(\d+ blocks? of (\d+) bytes\)$/m.exec(output)?.[1];
  const count = /: (\d+) extents? found\s*$/.exec(output)?.[1];
  if (unit === undefined || count === undefined) return undefined;
  const ranges: [number, number][] = [];
  for (const m of output.matchAll(/^\s*\d+:\s+(\d+)\.\.\s*(\d+):/gm)) {
    const [first, last] = [Number(m[1]), Number(m[2])];
    const start = first * Number(unit);
    const end = (last + 1) * Number(unit);
    const previous = ranges.at(-1);
    if (previous !== undefined && previous[1] >= start) previous[1] = Math.max(previous[1], end);
    else ranges.push([start, end]);
  }
  // filefrag counts extents after merging contiguous ones; a listing shorter than it says is not trusted.
  return ranges.length <= Number(count) && (ranges.length > 0 || Number(count) === 0) ? ranges : undefined;
}
