import { closeSync, openSync, readSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { longestMatch } from "./secret-patterns.js";
import { createPrefilter } from "./raw-prefilter.js";
import { scanChunkCandidates } from "./raw-chunk-scan.js";
import type { RawHit, RawScanJob } from "./raw-scan.js";

/** One of the raw scan's threads: every `workers`-th chunk of [start, end), by positional reads. */
const job = workerData as RawScanJob;
// Chunks are read straight into the prefilter's wasm memory: no copy between read and scan.
const prefilter = createPrefilter(job.chunkBytes + longestMatch);
const buffer = prefilter.data;
const zeros = Buffer.alloc(buffer.length);
const hits: RawHit[] = [];
const fd = openSync(job.path, "r");
try {
  let scanned = 0;
  for (let c = 0; c < job.chunks.length; c += 2) {
    const at = job.chunks[c] ?? 0;
    const chunk = job.chunks[c + 1] ?? 0;
    // The chunk and the overlap after it, so a match across its end is found here, once.
    const length = Math.min(buffer.length, chunk + longestMatch, job.end - at);
    let read = 0;
    while (read < length) {
      const n = readSync(fd, buffer, read, length - read, at + read);
      if (n === 0) break;
      read += n;
    }
    const view = buffer.subarray(0, read);
    // Free space of a fresh filesystem is zeros: compare at memory speed, skip the scan.
    if (!view.equals(zeros.subarray(0, read))) {
      scanChunkCandidates(view, prefilter.candidates(read), Math.min(chunk, read), (index, pattern) => {
        if (hits.length < job.maxHits) hits.push({ offset: at + index, pattern });
      });
    }
    scanned += Math.min(chunk, read);
    parentPort?.postMessage({ kind: "progress", bytes: scanned });
  }
} finally {
  closeSync(fd);
}
parentPort?.postMessage({ kind: "done", hits });
