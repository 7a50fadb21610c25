import { closeSync, openSync, readSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { judgeAt } from "../judging/content-scanner.js";
import { longestMatch } from "./secret-patterns.js";
import { createPrefilter } from "./raw-prefilter.js";
import { scanChunkCandidates } from "./raw-chunk-scan.js";
import { judgeBefore, judgeAfter, rawPageBytes, type RawHit, type RawScanJob, type RawScanResult } from "./raw-scan.js";

/**
 * One of the raw scan's threads: its chunks of the file, by positional reads. Each candidate is
 * judged here, in the most permissive context, with the bytes around it: what no judge could take
 * for a secret costs one bit of its page (so a flood of decoys fills no list and hides nothing).
 */
const job = workerData as RawScanJob;
// Chunks are read straight into the prefilter's wasm memory: no copy between read and scan.
const prefilter = createPrefilter(judgeBefore + job.chunkBytes + Math.max(judgeAfter, longestMatch));
const buffer = prefilter.data;
const count = new Int32Array(job.counter);
const zeros = Buffer.alloc(1024 * 1024);
const result: RawScanResult = { hits: [], coldPages: [], truncated: false };
const fd = openSync(job.path, "r");
try {
  let scanned = 0;
  for (let c = 0; c < job.chunks.length; c += 2) {
    const at = job.chunks[c] ?? 0;
    const chunk = job.chunks[c + 1] ?? 0;
    // The chunk with the bytes a judge reads before and after a candidate, as the image has them.
    const before = Math.min(judgeBefore, at);
    const length = Math.min(buffer.length, before + chunk + judgeAfter, job.end - at + before);
    let read = 0;
    while (read < length) {
      const n = readSync(fd, buffer, read, length - read, at - before + read);
      if (n === 0) break;
      read += n;
    }
    const view = buffer.subarray(0, read);
    const reportable = Math.min(before + chunk, read);
    // Free space of a fresh filesystem is zeros: skip the scan at memory speed.
    if (!allZero(view, before, reportable)) scanChunk(view, at - before, before, reportable);
    scanned += Math.max(0, reportable - before);
    parentPort?.postMessage({ kind: "progress", bytes: scanned });
  }
} finally {
  closeSync(fd);
}
parentPort?.postMessage({ kind: "done", result });

function scanChunk(view: Buffer, base: number, from: number, reportable: number): void {
  let text = "";
  let [textStart, textEnd, used] = [0, 0, 0];
  scanChunkCandidates(view, prefilter.candidates(view.length), reportable, (index, pattern) => {
    // A window decoded per candidate; a wider one after a window served many (a flood costs one pass).
    const [start, end] = [Math.max(0, index - judgeBefore), Math.min(view.length, index + judgeAfter)];
    if (start < textStart || end > textEnd) {
      [textStart, textEnd] = [start, Math.min(view.length, end + (used >= 8 ? 256 * 1024 : 0))];
      text = view.toString("latin1", textStart, textEnd);
      used = 0;
    }
    used++;
    if (judgeAt(text, index - textStart, "config").length === 0) {
      const page = Math.floor((base + index) / rawPageBytes);
      if (result.coldPages.at(-1) !== page) result.coldPages.push(page);
      return;
    }
    if (Atomics.add(count, 0, 1) >= job.maxHits) result.truncated = true;
    else result.hits.push({ offset: base + index, pattern } satisfies RawHit);
  }, from);
}

function allZero(view: Buffer, from: number, to: number): boolean {
  for (let at = from; at < to; at += zeros.length) {
    const end = Math.min(to, at + zeros.length);
    if (!view.subarray(at, end).equals(zeros.subarray(0, end - at))) return false;
  }
  return true;
}
