/** Block indexes as compact ranges ("0-511,600,702-900"): a journal line per thousands of blocks. */
export function blockRanges(indexes: Iterable<number>): string {
  const sorted = [...indexes].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    const from = sorted[i] as number;
    let to = from;
    while (i + 1 < sorted.length && sorted[i + 1] === to + 1) to = sorted[++i] as number;
    i++;
    parts.push(from === to ? String(from) : `${from}-${to}`);
  }
  return parts.join(",");
}

/** A part of a journal's block list that is no range of the disk's blocks. */
export class BlockRangeError extends Error {
  constructor(readonly part: string, blocks: number) {
    super(`not a block range of a disk of ${blocks} blocks: ${JSON.stringify(part.slice(0, 40))}`);
  }
}

/**
 * The indexes of blockRanges' text, each below `blocks` and no more of them than the disk has
 * (checked before a range is expanded): anything else is a BlockRangeError (a journal edited by hand).
 */
export function parseBlockRanges(text: string, blocks: number): number[] {
  const indexes: number[] = [];
  for (const part of text === "" ? [] : text.split(",")) {
    const match = /^(\d{1,15})(?:-(\d{1,15}))?$/.exec(part);
    const from = Number(match?.[1]);
    const to = match?.[2] === undefined ? from : Number(match[2]);
    if (match === null || to < from || to >= blocks || indexes.length + (to - from + 1) > blocks) throw new BlockRangeError(part, blocks);
    for (let index = from; index <= to; index++) indexes.push(index);
  }
  return indexes;
}
