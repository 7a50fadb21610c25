import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { CancelledError } from "../errors.js";
import type { ByteRange } from "./data-extents.js";
import type { SecretPattern } from "./secret-patterns.js";

/** A candidate secret in the raw bytes of an image, before anyone has judged it. */
export interface RawHit {
  offset: number;
  pattern: SecretPattern["name"];
}

export interface RawScanJob {
  path: string;
  /** This thread's chunks: offset and length pairs. */
  chunks: number[];
  chunkBytes: number;
  /** Reads past a chunk (the overlap) stop here. */
  end: number;
  maxHits: number;
}

type WorkerMessage = { kind: "progress"; bytes: number } | { kind: "done"; hits: RawHit[] };

const chunkBytes = 8 * 1024 * 1024;
/** A pathological image (a log of a million passwords) must not exhaust memory. */
const maxHits = 200_000;

export interface RawScanOptions {
  signal?: AbortSignal;
  onProgress?: (bytes: number) => void;
  /** Only these parts of the file hold data (the rest is holes, zeros); default: all of it. */
  data?: readonly ByteRange[];
}

/**
 * Every candidate secret in bytes [start, end) of a file, in offset order. The file is read
 * in chunks by one thread per core, so memory stays bounded whatever the image's size.
 */
export async function scanRaw(path: string, start: number, end: number, options: RawScanOptions = {}): Promise<RawHit[]> {
  const chunks: number[] = [];
  for (const [from, to] of options.data ?? [[start, end]]) {
    for (let at = Math.max(from, start); at < Math.min(to, end); at += chunkBytes) chunks.push(at, Math.min(chunkBytes, Math.min(to, end) - at));
  }
  const workers = Math.max(1, Math.min(availableParallelism(), chunks.length / 2, 4));
  const progress = new Array<number>(workers).fill(0);
  const results = await Promise.all(Array.from({ length: workers }, (_, index) => runWorker(
    { path, chunks: chunks.filter((_, i) => Math.floor(i / 2) % workers === index), chunkBytes, end, maxHits: Math.ceil(maxHits / workers) },
    (bytes) => {
      progress[index] = bytes;
      options.onProgress?.(progress.reduce((a, b) => a + b, 0));
    },
    options.signal,
  )));
  return results.flat().sort((a, b) => a.offset - b.offset);
}

function runWorker(job: RawScanJob, onProgress: (bytes: number) => void, signal?: AbortSignal): Promise<RawHit[]> {
  if (signal?.aborted) return Promise.reject(new CancelledError());
  const worker = new Worker(new URL("./raw-scan-worker.js", import.meta.url), { workerData: job });
  const stop = (): void => void worker.terminate();
  signal?.addEventListener("abort", stop, { once: true });
  return new Promise<RawHit[]>((resolve, reject) => {
    worker.on("message", (message: WorkerMessage) => {
      if (message.kind === "progress") onProgress(message.bytes);
      else resolve(message.hits);
    });
    worker.on("error", reject);
    worker.on("exit", () => {
      signal?.removeEventListener("abort", stop);
      if (signal?.aborted) reject(new CancelledError());
      else reject(new Error("raw scan worker exited without a result"));
    });
  });
}

/** Whether a raw scan hit is one of the limit's: the caller says the scan was cut short. */
export const rawHitLimit = maxHits;
