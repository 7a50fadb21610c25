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

/** The indexes of blockRanges' text, each below `blocks`; anything else in it is an error (a journal edited by hand). */
export function parseBlockRanges(text: string, blocks: number): number[] {
  if (text === "") return [];
  return text.split(",").flatMap((part) => {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (match === null) throw new Error(`not a block range: ${JSON.stringify(part)}`);
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    if (to < from || to >= blocks) throw new Error(`not a block range of a disk of ${blocks} blocks: ${JSON.stringify(part)}`);
    return Array.from({ length: to - from + 1 }, (_, k) => from + k);
  });
}
