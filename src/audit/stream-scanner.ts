import { scanContent, type ContentContext, type ContentMatch } from "./content-scanner.js";

/** Room after a candidate for judging it (a key's body, a secret beside a key id). */
const overlap = 16 * 1024;

export interface LocatedMatch extends ContentMatch {
  /** 1-based line, for text (not binary) content. */
  line?: number;
}

/**
 * Scans content that arrives in chunks. Each round scans what is carried over plus the new
 * chunk, but reports only candidates that start before the last `overlap` bytes; those are
 * carried into the next round, so a secret across a chunk boundary is found exactly once.
 */
export class StreamScanner {
  private carry = "";
  private consumed = 0;
  private lines = 0;
  readonly matches: LocatedMatch[] = [];

  constructor(private readonly context: ContentContext) {}

  push(chunk: Buffer): void {
    this.round(this.carry + chunk.toString("latin1"), false);
  }

  end(): LocatedMatch[] {
    this.round(this.carry, true);
    return this.matches;
  }

  private round(text: string, last: boolean): void {
    const reportable = last ? text.length : Math.max(0, text.length - overlap);
    for (const m of scanContent(text, this.context, 0, reportable)) {
      const line = this.context === "binary" ? undefined : this.lines + countLines(text, 0, m.offset) + 1;
      this.matches.push({ ...m, offset: this.consumed + m.offset, ...(line === undefined ? {} : { line }) });
    }
    if (this.context !== "binary") this.lines += countLines(text, 0, reportable);
    this.consumed += reportable;
    this.carry = text.slice(reportable);
  }
}

function countLines(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf("\n", from); i !== -1 && i < to; i = text.indexOf("\n", i + 1)) n++;
  return n;
}
