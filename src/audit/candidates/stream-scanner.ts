import { scanContent, type ContentContext, type ContentMatch } from "../judging/content-scanner.js";

/** Room after a candidate for judging it (a key's body, a secret beside a key id). */
const overlap = 16 * 1024;

export interface LocatedMatch extends ContentMatch {
  /** 1-based line, for text (not binary) content. */
  line?: number;
}

/**
 * Scans content that arrives in chunks. Each round scans what is carried over plus the new
 * chunk, but reports only candidates that start before the last `overlap` bytes; those are
 * carried into the next round, so a secret across a chunk boundary is found exactly once. The
 * text reported last round comes along as context only: a key id judged now still sees the
 * secret on the line before it.
 */
export class StreamScanner {
  private context = "";
  private carry = "";
  private consumed = 0;
  private lines = 0;
  readonly matches: LocatedMatch[] = [];

  constructor(private readonly kind: ContentContext) {}

  push(chunk: Buffer): void {
    this.round(chunk.toString("latin1"), false);
  }

  end(): LocatedMatch[] {
    this.round("", true);
    return this.matches;
  }

  private round(chunk: string, last: boolean): void {
    const text = this.context + this.carry + chunk;
    const from = this.context.length;
    const reportable = last ? text.length : Math.max(from, text.length - overlap);
    for (const m of scanContent(text, this.kind, from, reportable)) {
      const line = this.kind === "binary" ? undefined : this.lines + countLines(text, from, m.offset) + 1;
      this.matches.push({ ...m, offset: this.consumed + m.offset - from, ...(line === undefined ? {} : { line }) });
    }
    if (this.kind !== "binary") this.lines += countLines(text, from, reportable);
    this.consumed += reportable - from;
    this.carry = text.slice(reportable);
    this.context = text.slice(Math.max(0, reportable - overlap), reportable);
  }
}

function countLines(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf("\n", from); i !== -1 && i < to; i = text.indexOf("\n", i + 1)) n++;
  return n;
}
