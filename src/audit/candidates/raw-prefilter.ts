import { readFileSync } from "node:fs";
import { bucketOffsets, nibbleTables } from "./raw-fingerprints.js";

/**
 * The WebAssembly SIMD prefilter of the raw scan (raw-prefilter.wat, compiled to .wasm next to
 * this file by `npm run build`): finds the few offsets where a secret pattern may start, so the
 * regex runs there only instead of over every byte.
 */
export interface Prefilter {
  /** Where to read the bytes to scan: a view of the wasm memory, so a read lands there without a copy. */
  readonly data: Buffer;
  /** Sorted distinct offsets in data[0, length) where a match may start; valid until the next call. */
  candidates(length: number): Int32Array;
}

// The WebAssembly global is missing from lib ES2023 and @types/node 20: type the little used here.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer };
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const { WebAssembly } = globalThis as unknown as { WebAssembly: WasmApi };

const wasm = new WebAssembly.Module(readFileSync(new URL("./raw-prefilter.wasm", import.meta.url)));
const tablesAt = 0;
const dataAt = 256;
// The last block loads up to 15 bytes past the end of the data.
const padding = 64;

type Scan = (at: number, end: number, out: number, cap: number, from: number) => number;

/**
 * A prefilter with room for `capacity` bytes of data; one per thread, reused for every chunk.
 * `outSlots` bounds candidates per wasm call (more take more calls); tests make it small.
 */
export function createPrefilter(capacity: number, outSlots = 1 << 16): Prefilter {
  const outAt = dataAt + Math.ceil((capacity + padding) / 16) * 16;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((outAt + outSlots * 8) / 65536) });
  const instance = new WebAssembly.Instance(wasm, { env: { memory } });
  const scan = instance.exports.scan as Scan;
  const next = instance.exports.next as { value: number };
  new Uint8Array(memory.buffer, tablesAt, 128).set(nibbleTables());
  const data = Buffer.from(memory.buffer, dataAt, capacity);
  const out = new Uint32Array(memory.buffer, outAt, outSlots * 2);
  let starts = new Int32Array(4096);

  function candidates(length: number): Int32Array {
    let count = 0;
    const end = dataAt + length;
    for (let at = dataAt; at < end; at = next.value) {
      const n = scan(at, end, outAt, outSlots, dataAt);
      if (count + 8 * n > starts.length) {
        const grown = new Int32Array(Math.max(2 * starts.length, count + 8 * n));
        grown.set(starts.subarray(0, count));
        starts = grown;
      }
      for (let k = 0; k < n; k++) {
        const position = out[2 * k]! - dataAt;
        // A fingerprint cut off by the end of the data (or lit up by stale bytes past it) is no match.
        if (position + 4 > length) continue;
        for (let bits = out[2 * k + 1]!; bits !== 0; bits &= bits - 1) {
          const start = position - bucketOffsets[31 - Math.clz32(bits & -bits)]!;
          if (start >= 0) starts[count++] = start;
        }
      }
    }
    const sorted = starts.subarray(0, count).sort();
    let distinct = 0;
    for (let i = 0; i < count; i++) if (distinct === 0 || sorted[i] !== sorted[distinct - 1]) sorted[distinct++] = sorted[i]!;
    return sorted.subarray(0, distinct);
  }

  return { data, candidates };
}
