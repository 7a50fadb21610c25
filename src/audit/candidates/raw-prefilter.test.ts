import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fingerprints } from "./raw-fingerprints.js";
import { scanChunkCandidates, scanChunkText } from "./raw-chunk-scan.js";
import { createPrefilter } from "./raw-prefilter.js";
import { longestMatch, secretPatterns, type SecretPattern } from "./secret-patterns.js";

type Name = SecretPattern["name"];
type Hit = `${number} ${Name}`;

// Assembled at run time so that this file itself holds no credential-shaped string.
const j = (...parts: string[]): string => parts.join("");
const samples: [Name, string][] = [
  ["private-key", j("-----BEGIN", " RSA PRIVATE KEY-----")],
  ["private-key", j("-----BEGIN", " PRIVATE KEY-----")],
  ["private-key", j("-----BEGIN", " OPENSSH PRIVATE KEY-----")],
  // The encoded markers: base64 at the three alignments, hex in either case, UTF-16 (LE and BE).
  ...[0, 1, 2].map((a): [Name, string] => ["private-key-base64", Buffer.from(j("xy".slice(0, a), "-----BEGIN", " RSA PRIVATE")).toString("base64").slice(a === 0 ? 0 : 4)]),
  ["private-key-hex", Buffer.from(j("-----BEGIN", " RSA")).toString("hex").slice(4)],
  ["private-key-hex", Buffer.from(j("-----BEGIN", " RSA")).toString("hex").toUpperCase().slice(4)],
  ["private-key-utf16", Buffer.from(j("-----BEGIN", " OPENSSH PRIVATE KEY-----"), "utf16le").toString("latin1").slice(6)],
  ["private-key-utf16", Buffer.from(j("-----BEGIN", " ENCRYPTED PRIVATE KEY-----"), "utf16le").swap16().toString("latin1").slice(7)],
  ["putty-key", j("PuTTY-User", "-Key-File-2:")],
  ["putty-key", j("PuTTY-User", "-Key-File-", "1".repeat(200), ":")],
  ["aws-key-id", j("AKIA", "Q3EGUKJP4XM2ZL7V")],
  ["aws-key-id", j("ASIA", "Q3EGUKJP4XM2ZL7V")],
  ["aws-secret", j("aws_secret", "_access_key = ")],
  ["aws-secret", j("AWS_SECRET", "_ACCESS_KEY\":")],
  ...["p", "o", "u", "s", "r"].map((c): [Name, string] => ["github-token", j("gh", c, "_R4nd0mT0k3nV4lu3sXyZ", "aBcDeFgHiJkLmNoP")]),
  ["github-token", j("github", "_pat_", "11ABCDEFG0123456789_xy")],
  ...["a", "b", "p", "o", "s", "r"].map((c): [Name, string] => ["slack-token", j("xox", c, "-1234567890")]),
  ["assignment", j("pass", "word=")],
  ["assignment", j("PASS", "WD:")],
  ["assignment", j("sec", "ret = ")],
  ["assignment", j("Sec", "ret\t:")],
  ["jwk-private", j('"d', '": "', "jpsQnnGQmL-YBIffH1136csp")],
  ["jwk-private", j('"k', '":"', "GawgguFyGrWKav7AX4VKUg")],
];

/** A reproducible byte source (xorshift32): random data with no secrets but its planted ones. */
function randomBytes(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

function randomCase(text: string, seed: number): string {
  const bits = randomBytes(text.length, seed);
  return [...text].map((c, i) => ((bits[i]! & 1) === 1 ? c.toUpperCase() : c.toLowerCase())).join("");
}

let prefilter = createPrefilter(64 * 1024 + longestMatch);

/** Both scans chunk by chunk as the raw scan's workers read (chunk plus longestMatch of overlap). */
function scanBoth(bytes: Buffer, chunkBytes: number): { plain: Hit[]; prefiltered: Hit[] } {
  const plain: Hit[] = [];
  const prefiltered: Hit[] = [];
  for (let at = 0; at < bytes.length; at += chunkBytes) {
    // Leave the previous chunk's bytes past the end, as a worker does.
    const read = bytes.copy(prefilter.data, 0, at, Math.min(bytes.length, at + chunkBytes + longestMatch));
    const view = prefilter.data.subarray(0, read);
    const reportable = Math.min(chunkBytes, read);
    scanChunkText(view, reportable, (index, name) => plain.push(`${at + index} ${name}`));
    scanChunkCandidates(view, prefilter.candidates(read), reportable, (index, name) => prefiltered.push(`${at + index} ${name}`));
  }
  return { plain, prefiltered };
}

/** Random bytes with each text planted at `offsets`, fenced by newlines. */
function planted(length: number, seed: number, plants: [number, string][]): Buffer {
  const bytes = randomBytes(length, seed);
  for (const [offset, text] of plants) bytes.write(`\n${text}\n`, offset - 1, "latin1");
  return bytes;
}

describe("raw prefilter", () => {
  it("has fingerprints for every secret pattern, one offset per bucket", () => {
    for (const p of secretPatterns) assert.ok(fingerprints.some((f) => f.pattern === p.name), p.name);
    for (const f of fingerprints) {
      assert.ok(f.bucket >= 0 && f.bucket < 8);
      assert.equal(f.offset, fingerprints.find((g) => g.bucket === f.bucket)?.offset);
    }
  });

  it("finds every pattern planted at every alignment 0..31, exactly as the plain regex", () => {
    let seed = 1;
    for (const [name, text] of samples) {
      const plants: [number, string][] = Array.from({ length: 32 }, (_, a) => [1024 + a * 384 + a, text]);
      const bytes = planted(16 * 1024, seed++, plants);
      const { plain, prefiltered } = scanBoth(bytes, 64 * 1024);
      assert.deepEqual(prefiltered, plain, name);
      for (const [offset] of plants) assert.ok(plain.includes(`${offset} ${name}`), `${name} at ${offset}`);
    }
  });

  it("finds a match across a chunk boundary once, exactly as the plain regex", () => {
    const chunk = 4096;
    let seed = 100;
    for (const [name, text] of samples) {
      for (let back = 1; back <= Math.min(text.length, 40); back++) {
        const bytes = planted(3 * chunk, seed++, [[chunk - back, text], [2 * chunk + (back % 16), text]]);
        const { plain, prefiltered } = scanBoth(bytes, chunk);
        assert.deepEqual(prefiltered, plain, `${name} ${back} before the boundary`);
        // Longer than the overlap (the 200-digit putty key) is cut by the boundary: today's limit too.
        if (text.length <= longestMatch) assert.equal(plain.filter((h) => h === `${chunk - back} ${name}`).length, 1, `${text} ${back}`);
      }
    }
  });

  it("finds mixed-case spellings of the case-insensitive patterns", () => {
    const insensitive = samples.filter(([name]) => name === "aws-secret" || name === "assignment");
    let seed = 7;
    for (const [name, text] of insensitive) {
      for (let variant = 0; variant < 16; variant++) {
        const spelled = randomCase(text, seed++);
        const offset = 100 + variant * 7;
        const { plain, prefiltered } = scanBoth(planted(4096, seed, [[offset, spelled]]), 64 * 1024);
        assert.deepEqual(prefiltered, plain, spelled);
        assert.ok(plain.includes(`${offset} ${name}`), spelled);
      }
    }
  });

  it("equals the plain regex on a stock binary and a text corpus", () => {
    const licenses = readdirSync("/usr/share/common-licenses").map((f) => `/usr/share/common-licenses/${f}`);
    const corpus = Buffer.concat(licenses.flatMap((path) => {
      try {
        return [readFileSync(path)];
      } catch {
        return []; // a symlink to a licence that is not installed
      }
    }));
    for (const [what, bytes] of [["/usr/bin/ssh", readFileSync("/usr/bin/ssh")], ["licenses", corpus]] as const) {
      for (const chunk of [64 * 1024, 4099]) {
        const { plain, prefiltered } = scanBoth(bytes, chunk);
        assert.deepEqual(prefiltered, plain, `${what} in chunks of ${chunk}`);
      }
    }
  });

  it("equals the plain regex where candidates are dense, also when they overflow the output area", () => {
    const text = Buffer.from(samples.map(([, t]) => `${t}x${t.slice(0, 5)}${t.toUpperCase()}`).join("").repeat(40), "latin1");
    for (const slots of [1 << 16, 16, 17, 40]) {
      prefilter = createPrefilter(64 * 1024 + longestMatch, slots);
      const { plain, prefiltered } = scanBoth(text, 4096);
      assert.ok(plain.length > 100);
      assert.deepEqual(prefiltered, plain, `${slots} output slots`);
    }
  });
});
