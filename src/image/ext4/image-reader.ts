import { readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { KilnError } from "../../errors.js";

export const truncatedHint = "the image is incomplete: copy or download it again";

/** Positional reads of a filesystem that starts `offset` bytes into an image file, never past its end. */
export class ImageReader {
  blockSize = 1024;
  /** Bytes the filesystem says it has; set once the superblock is read. */
  expectedBytes = 0;

  constructor(
    private readonly handle: FileHandle,
    readonly name: string,
    readonly offset: number,
    readonly size: number,
  ) {}

  /**
   * `length` bytes at `position` inside the filesystem; fewer only when the image itself is
   * shorter. Read synchronously: a walk makes tens of thousands of small reads, and a round trip
   * through the thread pool for each left the walk waiting on I/O most of its time.
   */
  async bytesAt(position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const bytesRead = readSync(this.handle.fd, buffer, done, length - done, this.offset + position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === length ? buffer : buffer.subarray(0, done);
  }

  /** Whole blocks; a short read means the image is cut off before the end of its filesystem. */
  async blocks(first: number, count: number): Promise<Buffer> {
    const position = first * this.blockSize;
    const length = count * this.blockSize;
    const buffer = await this.bytesAt(position, length);
    if (buffer.length < length) throw this.truncated(position + length);
    return buffer;
  }

  truncated(neededBytes: number): KilnError {
    const expected = Math.max(neededBytes, this.expectedBytes);
    return new KilnError("KILN_AUDIT_TRUNCATED",
      `${this.name} is cut off: ${this.offset + this.size} bytes, but its ext filesystem at byte ${this.offset} needs ${this.offset + expected} bytes (its superblock says ${this.expectedBytes / this.blockSize} blocks of ${this.blockSize})`,
      { hint: truncatedHint });
  }
}
