import { combinedPattern, longestMatch, patternOf, type SecretPattern } from "./secret-patterns.js";

/** Called for each match of the combined pattern in a chunk, at its offset in the chunk. */
export type OnChunkHit = (index: number, pattern: SecretPattern["name"]) => void;

const everywhere = combinedPattern("g");
const sticky = combinedPattern("y");

/** The combined pattern over the whole chunk: the reference the prefiltered scan must equal. */
export function scanChunkText(chunk: Buffer, reportable: number, onHit: OnChunkHit): void {
  const text = chunk.toString("latin1");
  everywhere.lastIndex = 0;
  for (let m = everywhere.exec(text); m !== null && m.index < reportable; m = everywhere.exec(text)) {
    onHit(m.index, patternOf(m[0]) ?? "assignment");
  }
}

const isDigit = (byte: number | undefined): boolean => byte !== undefined && byte >= 0x30 && byte <= 0x39;

/**
 * The same matches as scanChunkText, trying the pattern only at `starts` (every offset where a
 * match may begin, sorted) and skipping those inside the previous match, as a global regex does.
 * Matches start in [from, reportable); the bytes before `from` are context only.
 */
export function scanChunkCandidates(chunk: Buffer, starts: Int32Array, reportable: number, onHit: OnChunkHit, from = 0): void {
  let matchedTo = from;
  for (const start of starts) {
    if (start >= reportable) break;
    if (start < matchedTo) continue;
    // Every pattern fits in longestMatch bytes but putty-key's [0-9]+: carry the window over a digit run.
    let end = Math.min(chunk.length, start + longestMatch);
    while (end < chunk.length && isDigit(chunk[end - 1])) end++;
    sticky.lastIndex = 0;
    const m = sticky.exec(chunk.toString("latin1", start, end));
    if (m === null) continue;
    onHit(start, patternOf(m[0]) ?? "assignment");
    matchedTo = start + m[0].length;
  }
}
