import { CancelledError, KilnError } from "../../errors.js";
import { CorruptCompressedError } from "./decompress.js";

/** A tar archive that ends in the middle of something: its entry is named. */
export function truncated(archive: string, where: string, cause?: unknown): KilnError {
  return new KilnError("KILN_AUDIT_TRUNCATED", `${archive} ends in ${where}`, { hint: "the archive is incomplete: copy or download it again", cause });
}

/** The archive's decompressed bytes, read as whole blocks or streamed in pieces, never copied more than a header. */
export class ArchiveBytes {
  /** Where in the archive reading is, for messages: "the middle of /etc/shadow". */
  where = "its first header";
  /** Bytes of the (decompressed) archive read so far. */
  offset = 0;
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly archive: string, private readonly chunks: AsyncIterator<Buffer>, private readonly signal?: AbortSignal) {}

  /** `length` bytes, fewer only at the end. */
  async read(length: number): Promise<Buffer> {
    if (this.pending.length >= length) return this.take(length);
    const parts: Buffer[] = [];
    let have = 0;
    for await (const piece of this.stream(length)) {
      parts.push(piece);
      have += piece.length;
    }
    return parts.length === 1 ? parts[0] as Buffer : Buffer.concat(parts, have);
  }

  /** `length` bytes in pieces as they arrive; ends early only at the end of the archive. */
  async *stream(length: number): AsyncGenerator<Buffer, void, undefined> {
    while (length > 0) {
      while (this.pending.length === 0) if (!(await this.fill())) return;
      const piece = this.take(length);
      length -= piece.length;
      yield piece;
    }
  }

  /** Skips up to `length` bytes; returns how many there were. */
  async skip(length: number): Promise<number> {
    let skipped = 0;
    while (skipped < length) {
      while (this.pending.length === 0) if (!(await this.fill())) return skipped;
      skipped += this.take(length - skipped).length;
    }
    return skipped;
  }

  /** Up to `length` of the bytes at hand, without waiting: most headers and small files are. */
  private take(length: number): Buffer {
    const piece = this.pending.subarray(0, length);
    this.pending = this.pending.subarray(piece.length);
    this.offset += piece.length;
    return piece;
  }

  private async fill(): Promise<boolean> {
    if (this.signal?.aborted) throw new CancelledError();
    let next: IteratorResult<Buffer>;
    try {
      next = await this.chunks.next();
    } catch (error) {
      if (!(error instanceof CorruptCompressedError)) throw error;
      if (error.endedEarly) throw truncated(this.archive, this.where, error);
      throw new KilnError(error.code, `${this.archive}: ${error.message} in ${this.where}`, { hint: "the archive is damaged: copy or download it again", cause: error });
    }
    if (next.done === true) return false;
    this.pending = next.value;
    return true;
  }
}
