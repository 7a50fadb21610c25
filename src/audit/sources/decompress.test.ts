import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { KilnError } from "../../errors.js";
import { type Compression, compressionOf, CorruptCompressedError, decompressed } from "./decompress.js";

const kinds: Compression[] = ["gzip", "zstd", "xz", "bzip2"];

function compress(kind: Compression, input: string, output: string): void {
  execFileSync("sh", ["-c", `${kind} -c "$1" > "$2"`, "sh", input, output]);
}

/** The file in 64 KiB chunks, as a tar entry or a file on disk would give it. */
function chunksOf(path: string): AsyncIterable<Buffer> {
  return createReadStream(path, { highWaterMark: 64 * 1024 }) as AsyncIterable<Buffer>;
}

async function sha256Of(chunks: AsyncIterable<Buffer>): Promise<{ sha256: string; length: number }> {
  const hash = createHash("sha256");
  let length = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    length += chunk.length;
  }
  return { sha256: hash.digest("hex"), length };
}

/** Names of this process's children, from /proc. */
async function childCommands(): Promise<string[]> {
  const names: string[] = [];
  for (const pid of (await readdir("/proc")).filter((name) => /^\d+$/.test(name))) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    const match = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
    if (match !== null && Number(match[2]) === process.pid) names.push(match[1] ?? "");
  }
  return names;
}

function corruptError(check: (error: CorruptCompressedError) => void): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof CorruptCompressedError, String(error));
    assert.equal(error.code, "KILN_AUDIT_CORRUPT_COMPRESSED");
    check(error);
    return true;
  };
}

// At the top level: the helper's cleanup would run right after a before() hook.
const dir = await tempDirectory();

/** Fed as a source, as if read from a file in these pieces. */
async function* pieces(...chunks: Buffer[]): AsyncGenerator<Buffer> {
  yield* chunks;
}

describe("compressionOf", () => {
  before(async () => {
    await writeFile(join(dir, "plain"), "hello, not compressed\n");
  });

  it("tells each kind by its magic bytes", async () => {
    for (const kind of kinds) {
      compress(kind, join(dir, "plain"), join(dir, `data.${kind}`));
      assert.equal(compressionOf(await readFile(join(dir, `data.${kind}`))), kind);
    }
  });

  it("recognises a zstd stream that starts with a skippable frame", () => {
    assert.equal(compressionOf(Buffer.from([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0])), "zstd");
  });

  it("says undefined for plain data, short heads and near misses", () => {
    assert.equal(compressionOf(Buffer.from("hello, not compressed\n")), undefined);
    assert.equal(compressionOf(Buffer.from([0x1f, 0x8b])), undefined);
    assert.equal(compressionOf(Buffer.from([0x1f, 0x8b, 7, 0])), undefined);
    assert.equal(compressionOf(Buffer.from("BZh0")), undefined);
    assert.equal(compressionOf(Buffer.alloc(0)), undefined);
  });
});

describe("decompressed", () => {
  let random: string;
  let large: string;
  let randomSha: string;
  before(async () => {
    random = join(dir, "random");
    const data = randomBytes(3 * 1024 * 1024);
    await writeFile(random, data);
    randomSha = createHash("sha256").update(data).digest("hex");
    for (const kind of kinds) compress(kind, random, `${random}.${kind}`);
    // Far larger than pipe and stream buffers, so that zstd is still running when the consumer stops.
    large = join(dir, "large");
    await writeFile(large, randomBytes(24 * 1024 * 1024));
    compress("zstd", large, `${large}.zstd`);
  });

  for (const kind of kinds) {
    it(`decompresses ${kind} in pieces to the original bytes`, async () => {
      const stream = decompressed(chunksOf(`${random}.${kind}`), kind, { limit: Infinity });
      assert.deepEqual(await sha256Of(stream), { sha256: randomSha, length: 3 * 1024 * 1024 });
      assert.equal(stream.cut, false);
    });
  }

  it("decompresses every member of a multi-member gzip file, and ignores zero padding after it", async () => {
    const parts = [];
    for (const text of ["first member\n", "second member\n"]) parts.push(execFileSync("gzip", ["-c"], { input: text }));
    const file = join(dir, "members.gz");
    await writeFile(file, Buffer.concat([...parts, Buffer.alloc(512)]));
    const chunks: Buffer[] = [];
    for await (const chunk of decompressed(chunksOf(file), "gzip", { limit: Infinity })) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString();
    assert.equal(text, "first member\nsecond member\n");
  });

  for (const kind of ["gzip", "zstd"] as const) {
    it(`stops at the limit without error and says it cut the ${kind} output`, async () => {
      const zeros = join(dir, `zeros-${kind}`);
      await writeFile(zeros, Buffer.alloc(5 * 1024 * 1024));
      compress(kind, zeros, `${zeros}.${kind}`);
      const cut = decompressed(chunksOf(`${zeros}.${kind}`), kind, { limit: 1024 * 1024 + 7 });
      assert.equal((await sha256Of(cut)).length, 1024 * 1024 + 7);
      assert.equal(cut.cut, true);
      const exact = decompressed(chunksOf(`${zeros}.${kind}`), kind, { limit: 5 * 1024 * 1024 });
      assert.equal((await sha256Of(exact)).length, 5 * 1024 * 1024);
      assert.equal(exact.cut, false);
      assert.deepEqual((await childCommands()).filter((name) => name === kind), []);
    });
  }

  it("reports corrupt gzip as a KilnError the caller can catch per file", async () => {
    const data = await readFile(`${random}.gzip`);
    data.fill(0x55, 100_000, 100_100);
    await assert.rejects(sha256Of(decompressed(pieces(data), "gzip", { limit: Infinity })), corruptError((error) => {
      assert.equal(error.endedEarly, false);
      assert.match(error.message, /^gzip data is corrupt \(/);
    }));
  });

  for (const kind of ["zstd", "xz", "bzip2"] as const) {
    it(`reports corrupt ${kind} with the command's own reason`, async () => {
      const data = await readFile(`${random}.${kind}`);
      data.fill(0x55, 100_000, 100_100);
      await assert.rejects(sha256Of(decompressed(pieces(data), kind, { limit: Infinity })), corruptError((error) => {
        assert.equal(error.endedEarly, false);
        assert.match(error.message, new RegExp(`^${kind} data is corrupt \\(.+\\)$`));
      }));
    });
  }

  for (const kind of kinds) {
    it(`tells ${kind} data that only ends early from corrupt data`, async () => {
      const data = await readFile(`${random}.${kind}`);
      await assert.rejects(sha256Of(decompressed(pieces(data.subarray(0, 200_000)), kind, { limit: Infinity })), corruptError((error) => {
        assert.equal(error.endedEarly, true);
        assert.match(error.message, new RegExp(`^${kind} data ends early`));
      }));
    });
  }

  it("kills zstd and stops reading the source when the consumer stops early", async () => {
    let sourceClosed = false;
    async function* source(): AsyncGenerator<Buffer> {
      try {
        yield* chunksOf(`${large}.zstd`);
      } finally {
        sourceClosed = true;
      }
    }
    const stream = decompressed(source(), "zstd", { limit: Infinity });
    for await (const chunk of stream) {
      assert.ok(chunk.length > 0);
      assert.deepEqual(await childCommands(), ["zstd"]);
      break;
    }
    assert.equal(sourceClosed, true);
    assert.deepEqual(await childCommands(), []);
  });

  it("keeps memory bounded: a consumer that waits holds back the source", async () => {
    let pulled = 0;
    async function* source(): AsyncGenerator<Buffer> {
      for await (const chunk of chunksOf(`${large}.zstd`)) {
        pulled += chunk.length;
        yield chunk;
      }
    }
    const iterator = decompressed(source(), "zstd", { limit: Infinity })[Symbol.asyncIterator]();
    try {
      await iterator.next();
      await sleep(300);
      // zstd's own buffers (about 2 MiB), pipes and streams hold a little; the file is 24 MiB of incompressible data.
      assert.ok(pulled < 4 * 1024 * 1024, `pulled ${pulled} bytes`);
    } finally {
      await iterator.return?.();
    }
    assert.deepEqual(await childCommands(), []);
  });

  it("ends with CancelledError and no child left when aborted", async () => {
    const controller = new AbortController();
    const stream = decompressed(chunksOf(`${large}.zstd`), "zstd", { limit: Infinity, signal: controller.signal });
    await assert.rejects(
      (async () => {
        for await (const _chunk of stream) controller.abort();
      })(),
      (error: unknown) => error instanceof KilnError && error.code === "KILN_CANCELLED",
    );
    assert.deepEqual(await childCommands(), []);
  });

  it("passes on the source's own error rather than calling the data corrupt", async () => {
    async function* failing(kind: Compression): AsyncGenerator<Buffer> {
      yield (await readFile(`${random}.${kind}`)).subarray(0, 100_000);
      throw new KilnError("KILN_TEST", "the source broke");
    }
    await assert.rejects(sha256Of(decompressed(failing("zstd"), "zstd", { limit: Infinity })), { code: "KILN_TEST" });
    await assert.rejects(sha256Of(decompressed(failing("gzip"), "gzip", { limit: Infinity })), { code: "KILN_TEST" });
    assert.deepEqual(await childCommands(), []);
  });

  it("names the Debian package when the command is missing", async () => {
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      await assert.rejects(sha256Of(decompressed(pieces(Buffer.from("x")), "xz", { limit: Infinity })), (error: unknown) => {
        assert.ok(error instanceof KilnError);
        assert.equal(error.code, "KILN_TOOL_MISSING");
        assert.equal(error.hint, "install with: apt-get install -y xz-utils");
        return true;
      });
    } finally {
      process.env.PATH = path;
    }
  });
});
