import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { CancelledError } from "../../errors.js";
import type { ByteRange } from "../sources/data-extents.js";
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
  /** Hits kept by all threads together; `counter` (one Int32, shared) counts them. */
  maxHits: number;
  counter: SharedArrayBuffer;
}

/**
 * What a raw scan found. `hits`: candidates the quick judgement kept, in offset order.
 * `coldPages`: the pages (rawPageBytes each, sorted) holding a candidate it threw out, which a
 * file's own bytes could still make a secret where the file's run of blocks ends or begins.
 * `truncated`: more hits than the limit; the rest were not kept (the audit is incomplete).
 */
export interface RawScanResult {
  hits: RawHit[];
  coldPages: number[];
  truncated: boolean;
}

type WorkerMessage = { kind: "progress"; bytes: number } | { kind: "done"; result: RawScanResult };

const chunkBytes = 8 * 1024 * 1024;
/** Bytes a judge reads before and after a candidate (as judgeRaw and the in-place judgement do). */
export const judgeBefore = 2048;
export const judgeAfter = 16 * 1024;
export const rawPageBytes = 4096;

export interface RawScanOptions {
  signal?: AbortSignal;
  onProgress?: (bytes: number) => void;
  /** Only these parts of the file hold data (the rest is holes, zeros); default: all of it. */
  data?: readonly ByteRange[];
  /** Hits kept at most (a log of a million passwords must not exhaust memory); past it, `truncated`. */
  maxHits?: number;
}

/**
 * Every candidate secret in bytes [start, end) of a file. The file is read in chunks by one
 * thread per core, so memory stays bounded whatever the image's size.
 */
export async function scanRaw(path: string, start: number, end: number, options: RawScanOptions = {}): Promise<RawScanResult> {
  const chunks: number[] = [];
  for (const [from, to] of options.data ?? [[start, end]]) {
    for (let at = Math.max(from, start); at < Math.min(to, end); at += chunkBytes) chunks.push(at, Math.min(chunkBytes, Math.min(to, end) - at));
  }
  const workers = Math.max(1, Math.min(availableParallelism(), chunks.length / 2, 4));
  const progress = new Array<number>(workers).fill(0);
  const counter = new SharedArrayBuffer(4);
  const results = await Promise.all(Array.from({ length: workers }, (_, index) => runWorker(
    { path, chunks: chunks.filter((_, i) => Math.floor(i / 2) % workers === index), chunkBytes, end, maxHits: options.maxHits ?? 1_000_000, counter },
    (bytes) => {
      progress[index] = bytes;
      options.onProgress?.(progress.reduce((a, b) => a + b, 0));
    },
    options.signal,
  )));
  return {
    hits: results.flatMap((r) => r.hits).sort((a, b) => a.offset - b.offset),
    coldPages: [...new Set(results.flatMap((r) => r.coldPages))].sort((a, b) => a - b),
    truncated: results.some((r) => r.truncated),
  };
}

function runWorker(job: RawScanJob, onProgress: (bytes: number) => void, signal?: AbortSignal): Promise<RawScanResult> {
  if (signal?.aborted) return Promise.reject(new CancelledError());
  const worker = new Worker(new URL("./raw-scan-worker.js", import.meta.url), { workerData: job });
  const stop = (): void => void worker.terminate();
  signal?.addEventListener("abort", stop, { once: true });
  return new Promise<RawScanResult>((resolve, reject) => {
    worker.on("message", (message: WorkerMessage) => {
      if (message.kind === "progress") onProgress(message.bytes);
      else resolve(message.result);
    });
    worker.on("error", reject);
    worker.on("exit", () => {
      signal?.removeEventListener("abort", stop);
      if (signal?.aborted) reject(new CancelledError());
      else reject(new Error("raw scan worker exited without a result"));
    });
  });
}
