import { closeSync, openSync, readSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { combinedPattern, longestMatch, patternOf } from "./secret-patterns.js";
import type { RawHit, RawScanJob } from "./raw-scan.js";

/** One of the raw scan's threads: every `workers`-th chunk of [start, end), by positional reads. */
const job = workerData as RawScanJob;
const pattern = combinedPattern();
const buffer = Buffer.allocUnsafe(job.chunkBytes + longestMatch);
const zeros = Buffer.alloc(buffer.length);
const hits: RawHit[] = [];
const fd = openSync(job.path, "r");
try {
  let scanned = 0;
  for (let at = job.start + job.index * job.chunkBytes; at < job.end; at += job.workers * job.chunkBytes) {
    const length = Math.min(buffer.length, job.end - at);
    let read = 0;
    while (read < length) {
      const n = readSync(fd, buffer, read, length - read, at + read);
      if (n === 0) break;
      read += n;
    }
    const view = buffer.subarray(0, read);
    // Free space of a fresh filesystem is zeros: compare at memory speed, skip the regex.
    if (!view.equals(zeros.subarray(0, read))) {
      const text = view.toString("latin1");
      const reportable = Math.min(job.chunkBytes, read);
      pattern.lastIndex = 0;
      for (let m = pattern.exec(text); m !== null && m.index < reportable; m = pattern.exec(text)) {
        if (hits.length < job.maxHits) hits.push({ offset: at + m.index, pattern: patternOf(m[0]) ?? "assignment" });
      }
    }
    scanned += Math.min(job.chunkBytes, read);
    parentPort?.postMessage({ kind: "progress", bytes: scanned });
  }
} finally {
  closeSync(fd);
}
parentPort?.postMessage({ kind: "done", hits });
