import { spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { createGunzip } from "node:zlib";
import { CancelledError, KilnError } from "../../errors.js";
import { type HostTool, requireTools } from "../../system/host-tools.js";

export type Compression = "gzip" | "zstd" | "xz" | "bzip2";

/** What the first bytes of a file say it is compressed with; never guessed from its name. */
export function compressionOf(head: Buffer): Compression | undefined {
  // gzip's two magic bytes alone match one random file in 65536: the method and reserved flag bits narrow it.
  if (head[0] === 0x1f && head[1] === 0x8b && head[2] === 8 && head.length > 3 && ((head[3] ?? 0) & 0xe0) === 0) return "gzip";
  if (startsWith(head, [0x28, 0xb5, 0x2f, 0xfd])) return "zstd";
  // A zstd skippable frame (pzstd starts with one) is 0x184D2A5? little-endian.
  if (((head[0] ?? 0) & 0xf0) === 0x50 && startsWith(head.subarray(1), [0x2a, 0x4d, 0x18])) return "zstd";
  if (startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return "xz";
  if (startsWith(head, [0x42, 0x5a, 0x68]) && (head[3] ?? 0) >= 0x31 && (head[3] ?? 0) <= 0x39) return "bzip2";
  return undefined;
}

function startsWith(head: Buffer, magic: readonly number[]): boolean {
  return head.length >= magic.length && magic.every((byte, i) => head[i] === byte);
}

/** Compressed data that cannot be decompressed; `endedEarly` when it is only cut short. */
export class CorruptCompressedError extends KilnError {
  readonly endedEarly: boolean;

  constructor(kind: Compression, reason: string, endedEarly: boolean) {
    const what = endedEarly ? `${kind} data ends early (${reason})` : `${kind} data is corrupt (${reason})`;
    super("KILN_AUDIT_CORRUPT_COMPRESSED", what, { hint: "the compressed data is damaged: only what came before the damage was read" });
    this.name = "CorruptCompressedError";
    this.endedEarly = endedEarly;
  }
}

/** Decompressed content; `cut` tells, once iteration has ended, that output went on past the limit. */
export interface DecompressedStream extends AsyncIterable<Buffer> {
  readonly cut: boolean;
}

export interface DecompressOptions {
  /** Output bytes yielded at most; the rest is not decompressed (a small bomb stays small). */
  limit: number;
  signal?: AbortSignal;
}

/**
 * Decompresses a stream with bounded memory: gzip in-process, the others through `zstd|xz|bzip2 -dc`.
 * Iterate once. Stopping early, reaching the limit or an abort kills the child process, and the
 * iteration only finishes once it is gone and `source` is no longer being read.
 */
export function decompressed(source: AsyncIterable<Buffer>, kind: Compression, options: DecompressOptions): DecompressedStream {
  return new Decompression(source, kind, options);
}

const tools: Record<Exclude<Compression, "gzip">, HostTool> = {
  zstd: { command: "zstd", debianPackage: "zstd", purpose: "decompresses zstd files in audited images" },
  xz: { command: "xz", debianPackage: "xz-utils", purpose: "decompresses xz files in audited images" },
  bzip2: { command: "bzip2", debianPackage: "bzip2", purpose: "decompresses bzip2 files in audited images" },
};

/** A running decompressor: compressed bytes go into `input`, plain bytes come out of `output`. */
interface Decompressor {
  input: Writable;
  output: Readable;
  /** Settles once all output was read: rejects when the data was corrupt. */
  finished(): Promise<void>;
  /** Ends it at once, without error, and waits until it is gone. */
  stop(): Promise<void>;
  corrupt(error: unknown): CorruptCompressedError;
}

class Decompression implements DecompressedStream {
  cut = false;

  constructor(
    private readonly source: AsyncIterable<Buffer>,
    private readonly kind: Compression,
    private readonly options: DecompressOptions,
  ) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    const { limit, signal } = this.options;
    if (signal?.aborted) throw new CancelledError();
    const decompressor = this.kind === "gzip" ? gunzip() : await command(this.kind);
    let stopping = false;
    let sourceError: unknown;
    const pumped = pump(this.source, decompressor.input, () => stopping).catch((error: unknown) => {
      sourceError = error;
      return decompressor.stop();
    });
    const onAbort = (): void => void decompressor.stop();
    signal?.addEventListener("abort", onAbort, { once: true });
    let yielded = 0;
    try {
      try {
        for await (const chunk of decompressor.output as AsyncIterable<Buffer>) {
          const room = limit - yielded;
          if (chunk.length > room) {
            if (room > 0) yield chunk.subarray(0, room);
            this.cut = true;
            return;
          }
          yielded += chunk.length;
          yield chunk;
        }
      } catch (error) {
        if (sourceError !== undefined) throw sourceError;
        if (signal?.aborted) throw new CancelledError();
        throw decompressor.corrupt(error);
      }
      await pumped;
      if (sourceError !== undefined) throw sourceError;
      if (signal?.aborted) throw new CancelledError();
      await decompressor.finished();
    } finally {
      signal?.removeEventListener("abort", onAbort);
      stopping = true;
      await decompressor.stop();
      await pumped;
    }
  }
}

/** Feeds `source` into `input`, waiting whenever it is full; returns quietly once `input` is gone. */
async function pump(source: AsyncIterable<Buffer>, input: Writable, stopping: () => boolean): Promise<void> {
  for await (const chunk of source) {
    if (stopping() || input.destroyed) return;
    if (!input.write(chunk)) await drained(input);
  }
  if (!input.destroyed) input.end();
}

function drained(input: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      input.off("drain", done);
      input.off("close", done);
      resolve();
    };
    input.on("drain", done);
    input.on("close", done);
  });
}

function gunzip(): Decompressor {
  const zlib = createGunzip({ chunkSize: 128 * 1024 });
  return {
    input: zlib,
    output: zlib,
    finished: () => Promise.resolve(),
    stop: async () => void zlib.destroy(),
    corrupt: (error) => {
      const code = (error as { code?: unknown }).code;
      return new CorruptCompressedError("gzip", error instanceof Error ? error.message : String(error), code === "Z_BUF_ERROR");
    },
  };
}

async function command(kind: Exclude<Compression, "gzip">): Promise<Decompressor> {
  const tool = tools[kind];
  await requireTools([tool]);
  const child = spawn(tool.command, ["-dc"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text: string) => { if (stderr.length < 4096) stderr += text; });
  // The command exits on corrupt input without reading the rest: its exit code tells, not EPIPE.
  child.stdin.on("error", () => undefined);
  let spawnError: Error | undefined;
  let ended = "";
  const closed = new Promise<void>((resolve) => {
    child.on("error", (error) => { spawnError = error; resolve(); });
    child.on("close", (code, signal) => {
      ended = code === 0 ? "" : signal === null ? `${tool.command} exited with code ${code}` : `${tool.command} was killed by ${signal}`;
      resolve();
    });
  });
  const corrupt = (): CorruptCompressedError => {
    const firstLine = stderr.split("\n").find((line) => line.trim() !== "")?.trim();
    return new CorruptCompressedError(kind, firstLine ?? ended, /premature end|unexpected end|ends unexpectedly/i.test(stderr));
  };
  return {
    input: child.stdin,
    output: child.stdout,
    finished: async () => {
      await closed;
      if (spawnError !== undefined) throw spawnError;
      if (ended !== "") throw corrupt();
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      // Open pipes would hold back "close": nothing more is read from them.
      child.stdin.destroy();
      child.stdout.destroy();
      await closed;
    },
    corrupt,
  };
}
