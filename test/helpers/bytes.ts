import { open } from "node:fs/promises";

/** Byte offsets where `needle` occurs anywhere in a file, read in chunks that overlap by the needle's length. */
export async function findBytes(file: string, needle: string): Promise<number[]> {
  const pattern = Buffer.from(needle);
  const handle = await open(file, "r");
  const chunk = Buffer.alloc(16 * 1024 * 1024);
  const hits: number[] = [];
  try {
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      const view = chunk.subarray(0, bytesRead);
      for (let at = view.indexOf(pattern); at !== -1; at = view.indexOf(pattern, at + 1)) {
        if (hits.at(-1) !== position + at) hits.push(position + at);
      }
      if (bytesRead < chunk.length) break;
      position += bytesRead - pattern.length + 1;
    }
  } finally {
    await handle.close();
  }
  return hits;
}
