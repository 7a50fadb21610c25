import { readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";

/**
 * Fills `buffer` from `position` of an open file and returns the bytes read (fewer at its end).
 * Synchronous on purpose: an audit judges thousands of candidates by a few KiB around each, and
 * a thread-pool round trip per read cost more than the reads.
 */
export function readAt(handle: FileHandle, buffer: Buffer, position: number): number {
  let done = 0;
  while (done < buffer.length) {
    const n = readSync(handle.fd, buffer, done, buffer.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
