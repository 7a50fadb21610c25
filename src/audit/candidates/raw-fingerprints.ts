import type { SecretPattern } from "./secret-patterns.js";

/**
 * The 4-byte literals the raw prefilter looks for, one or more per secret pattern: every match of
 * a pattern contains one of its fingerprints `offset` bytes after the match start. Each byte is a
 * set (a string of allowed bytes) so case-insensitive words need no enumerated variants.
 */
export interface Fingerprint {
  pattern: SecretPattern["name"];
  bucket: number;
  offset: number;
  bytes: readonly [string, string, string, string];
}

const anyCase = (word: string): [string, string, string, string] => {
  const sets = [...word].map((c) => c.toUpperCase() + c.toLowerCase());
  return [sets[0] ?? "", sets[1] ?? "", sets[2] ?? "", sets[3] ?? ""];
};

// Eight buckets (one bit each); fingerprints sharing a bucket share an offset and cross-match.
export const fingerprints: readonly Fingerprint[] = [
  // "-----BEGIN": "-BEG" rather than "----", which text files are full of
  { pattern: "private-key", bucket: 0, offset: 4, bytes: ["-", "B", "E", "G"] },
  // Encoded markers, in buckets whose other fingerprints share few bytes with theirs.
  { pattern: "private-key-utf16", bucket: 4, offset: 4, bytes: ["B", "\0", "E", "\0"] },
  { pattern: "private-key-hex", bucket: 0, offset: 4, bytes: ["2", "dD", "4", "2"] },
  { pattern: "private-key-base64", bucket: 5, offset: 0, bytes: ["L", "S", "0", "t"] },
  { pattern: "putty-key", bucket: 1, offset: 0, bytes: ["P", "u", "T", "T"] },
  { pattern: "aws-key-id", bucket: 1, offset: 0, bytes: ["A", "KS", "I", "A"] },
  { pattern: "jwk-private", bucket: 1, offset: 0, bytes: ['"', "dk", '"', " \t\r\n:"] },
  { pattern: "aws-secret", bucket: 2, offset: 0, bytes: anyCase("aws_") },
  { pattern: "github-token", bucket: 3, offset: 0, bytes: ["g", "h", "pousr", "_"] },
  // "github_pat_": "ub_p" rather than "gith", which every URL to github has
  { pattern: "github-token", bucket: 4, offset: 4, bytes: ["u", "b", "_", "p"] },
  { pattern: "slack-token", bucket: 5, offset: 0, bytes: ["x", "o", "x", "abposr"] },
  { pattern: "assignment", bucket: 6, offset: 0, bytes: anyCase("pass") },
  { pattern: "assignment", bucket: 7, offset: 0, bytes: anyCase("secr") },
];

/** How far before its fingerprint each bucket's match starts. */
export const bucketOffsets: readonly number[] = Array.from({ length: 8 }, (_, b) => fingerprints.find((f) => f.bucket === b)?.offset ?? 0);

/** The eight 16-byte nibble tables (lo0 hi0 lo1 hi1 lo2 hi2 lo3 hi3) the wasm scan reads. */
export function nibbleTables(): Uint8Array {
  const tables = new Uint8Array(128);
  for (const f of fingerprints) {
    f.bytes.forEach((set, j) => {
      for (const c of set) {
        const byte = c.charCodeAt(0);
        tables[32 * j + (byte & 15)]! |= 1 << f.bucket;
        tables[32 * j + 16 + (byte >> 4)]! |= 1 << f.bucket;
      }
    });
  }
  return tables;
}
