import type { PhysicalRun } from "./data-runs.js";
import type { ImageReader } from "./image-reader.js";

/** Largest chunk a read yields, so that a huge file never sits in memory whole. */
export const chunkBytes = 1 << 20;

/**
 * The first `size` bytes of a file whose data is `runs` (in file order): holes and uninitialized
 * extents come out as zeros, each chunk at most 1 MiB. Runs that overlap earlier ones are read
 * from where the earlier one ends. With `compactHoles`, each hole (or uninitialized run) is one
 * zero byte instead: a scanner reads an 8 GiB sparse file by its data only.
 */
export async function* readRuns(reader: ImageReader, runs: readonly PhysicalRun[], size: number, compactHoles = false): AsyncGenerator<Buffer> {
  const zeros = compactHoles ? oneZero : allZeros;
  const blockSize = reader.blockSize;
  let position = 0;
  for (const run of runs) {
    const runStart = run.logicalBlock * blockSize;
    if (runStart >= size) break;
    const runEnd = Math.min(size, runStart + run.blocks * blockSize);
    if (runEnd <= position) continue;
    if (runStart > position) {
      yield* zeros(runStart - position);
      position = runStart;
    }
    while (position < runEnd) {
      const length = Math.min(chunkBytes, runEnd - position);
      if (run.uninitialized === true) {
        if (!compactHoles || position === runStart) yield compactHoles ? Buffer.alloc(1) : Buffer.alloc(length);
      } else {
        const at = run.physicalBlock * blockSize + (position - runStart);
        const bytes = await reader.bytesAt(at, length);
        if (bytes.length < length) throw reader.truncated(at + length);
        yield bytes;
      }
      position += length;
    }
  }
  if (position < size) yield* zeros(size - position);
}

function* oneZero(): Generator<Buffer> {
  yield Buffer.alloc(1);
}

function* allZeros(length: number): Generator<Buffer> {
  for (let left = length; left > 0; left -= chunkBytes) yield Buffer.alloc(Math.min(chunkBytes, left));
}
