import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import type { EBSClient } from "@aws-sdk/client-ebs";
import { KilnError } from "../errors.js";
import { RateBudget } from "./rate-budget.js";
import { blockDigest, snapshotBlockBytes } from "./snapshot-blocks.js";
import { readSnapshot } from "./snapshot-readback.js";

type Page = { VolumeSize?: number; BlockSize?: number; Blocks?: { BlockIndex?: number; BlockToken?: string }[]; NextToken?: string };
interface Fake { list: (token: string | undefined, calls: number) => Page; get?: (index: number, signal: AbortSignal | undefined) => { DataLength?: number; Checksum?: string; ChecksumAlgorithm?: string; BlockData?: unknown } | Promise<never> }

const block = (fill: number): Buffer => Buffer.alloc(snapshotBlockBytes, fill);
/** A body as the SDK gives it: a stream that can also be read whole. */
const body = (stream: Readable): Readable => Object.assign(stream, { transformToByteArray: async () => { const chunks: Buffer[] = []; for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array)); return new Uint8Array(Buffer.concat(chunks)); } });
const honestGet = (index: number): { DataLength: number; Checksum: string; ChecksumAlgorithm: string; BlockData: Readable } => {
  const data = block(index % 250 + 1);
  return { DataLength: data.length, Checksum: blockDigest(data).toString("base64"), ChecksumAlgorithm: "SHA256", BlockData: body(Readable.from([data])) };
};

/** An EBS client that answers what a hostile endpoint (or a man in the middle) chooses. */
function fakeEbs(fake: Fake): EBSClient & { lists: number; gets: number } {
  const client = {
    lists: 0, gets: 0,
    send: (command: { constructor: { name: string }; input: Record<string, unknown> }, options?: { abortSignal?: AbortSignal }): Promise<unknown> => {
      if (command.constructor.name === "ListSnapshotBlocksCommand") {
        client.lists++;
        return Promise.resolve(fake.list(command.input.NextToken as string | undefined, client.lists));
      }
      client.gets++;
      return Promise.resolve((fake.get ?? honestGet)(command.input.BlockIndex as number, options?.abortSignal));
    },
  };
  return client as unknown as EBSClient & { lists: number; gets: number };
}

let parent: string;
const read = (ebs: EBSClient, id = "snap-0123456789abcdef0", extra: { blockDeadlineMs?: number; tempDirectory?: string } = {}): ReturnType<typeof readSnapshot> =>
  readSnapshot(ebs, id, { budget: new RateBudget(8), signal: new AbortController().signal, tempDirectory: parent, progress: () => undefined, ...extra });
const refused = async (promise: Promise<unknown>, pattern: RegExp): Promise<void> => {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof KilnError, `a KilnError, not ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
  assert.deepEqual(await readdir(parent), [], "no copy left behind");
};

describe("snapshot read-back against hostile answers", () => {
  before(async () => { parent = await mkdtemp(join(tmpdir(), "kiln-readback-test-")); });
  after(async () => { await rm(parent, { recursive: true, force: true }); });

  it("reads an honest snapshot: the written blocks where they lie", async () => {
    const copy = await read(fakeEbs({ list: () => ({ VolumeSize: 1, BlockSize: snapshotBlockBytes, Blocks: [{ BlockIndex: 0, BlockToken: "a" }, { BlockIndex: 3, BlockToken: "b" }] }) }));
    try {
      assert.equal(copy.blocks, 2);
      const bytes = await readFile(copy.path);
      assert.equal(bytes.length, 1024 ** 3);
      assert.ok(bytes.subarray(3 * snapshotBlockBytes, 4 * snapshotBlockBytes).equals(block(4)));
    } finally {
      await copy.remove();
    }
  });

  it("refuses a NextToken that repeats (it would page forever)", async () => {
    const ebs = fakeEbs({ list: (_, calls) => ({ VolumeSize: 1, BlockSize: snapshotBlockBytes, Blocks: calls === 1 ? [{ BlockIndex: 0, BlockToken: "a" }] : [], ...(calls < 500 ? { NextToken: "again" } : {}) }) });
    await refused(read(ebs), /NextToken.*does not advance/);
    assert.ok(ebs.lists < 5, `${ebs.lists} pages listed`);
  });

  it("refuses a NextToken that changes but never names a new block", async () => {
    const ebs = fakeEbs({ list: (_, calls) => ({ VolumeSize: 1, BlockSize: snapshotBlockBytes, Blocks: [{ BlockIndex: 0, BlockToken: "a" }].slice(0, calls === 1 ? 1 : 0), ...(calls < 500 ? { NextToken: `t${calls}` } : {}) }) });
    await refused(read(ebs), /does not advance|twice/);
    assert.ok(ebs.lists < 5, `${ebs.lists} pages listed`);
  });

  it("refuses a block listed twice", async () => {
    await refused(read(fakeEbs({ list: () => ({ VolumeSize: 1, BlockSize: snapshotBlockBytes, Blocks: [{ BlockIndex: 2, BlockToken: "a" }, { BlockIndex: 2, BlockToken: "b" }] }) })), /block 2 twice/);
  });

  it("refuses a block index outside the volume, or negative", async () => {
    for (const index of [2048, -1, 1.5, 2 ** 60]) {
      await refused(read(fakeEbs({ list: () => ({ VolumeSize: 1, BlockSize: snapshotBlockBytes, Blocks: [{ BlockIndex: index, BlockToken: "a" }] }) })), /outside its 2048 blocks/);
    }
  });

  it("refuses a block size other than 512 KiB, and an impossible volume size", async () => {
    await refused(read(fakeEbs({ list: () => ({ VolumeSize: 1, BlockSize: 1024 ** 3, Blocks: [{ BlockIndex: 0, BlockToken: "a" }] }) })), /block size of 1073741824/);
    await refused(read(fakeEbs({ list: () => ({ VolumeSize: 10_000_000, BlockSize: snapshotBlockBytes, Blocks: [] }) })), /volume size of 10000000 GiB/);
    await refused(read(fakeEbs({ list: () => ({ VolumeSize: -1, BlockSize: snapshotBlockBytes, Blocks: [] }) })), /volume size of -1 GiB/);
  });

  it("refuses blocks of the wrong length, a wrong or missing SHA-256, or a body longer than a block", async () => {
    const list = (): Page => ({ VolumeSize: 1, BlockSize: snapshotBlockBytes, Blocks: [{ BlockIndex: 0, BlockToken: "a" }] });
    const short = Buffer.alloc(100, 1);
    await refused(read(fakeEbs({ list, get: () => ({ Checksum: blockDigest(short).toString("base64"), BlockData: body(Readable.from([short])) }) })), /with 100 bytes/);
    await refused(read(fakeEbs({ list, get: () => ({ Checksum: blockDigest(block(9)).toString("base64"), BlockData: body(Readable.from([block(1)])) }) })), /not matching its SHA-256/);
    await refused(read(fakeEbs({ list, get: () => ({ BlockData: body(Readable.from([block(1)])) }) })), /without its SHA-256/);
    let pulled = 0;
    const endless = body(Readable.from((function* () { for (;;) { pulled++; yield block(1); } })()));
    await refused(read(fakeEbs({ list, get: () => ({ Checksum: "x", BlockData: endless }) })), /more than 524288/);
    assert.ok(pulled < 10, `${pulled} blocks of an endless body read`);
  });

  it("tries a block whose answer stalls again, and names it when it never comes", async () => {
    let tries = 0;
    const list = (): Page => ({ VolumeSize: 1, BlockSize: snapshotBlockBytes, Blocks: [{ BlockIndex: 5, BlockToken: "a" }] });
    const stalled = (): { Checksum: string; BlockData: Readable } => {
      tries++;
      return { Checksum: "x", BlockData: body(new Readable({ read() { /* never a byte */ } })) };
    };
    await assert.rejects(read(fakeEbs({ list, get: stalled }), undefined, { blockDeadlineMs: 50 }), (error: Error) => /block 5.*TimeoutError: no whole answer within 0.05s/s.test(error.message));
    assert.ok(tries > 1, `${tries} tries`);
  });

  it("refuses a snapshot id that is not one (from a garbled DescribeImages): no file made outside the private directory", async () => {
    const ebs = fakeEbs({ list: () => ({ VolumeSize: 1, BlockSize: snapshotBlockBytes, Blocks: [] }) });
    await refused(read(ebs, "../../kiln-planted"), /is not a snapshot id/);
    assert.equal(ebs.lists, 0);
  });

  it("refuses a temporary directory another user could rename things in", async () => {
    const shared = await mkdtemp(join(parent, "shared-"));
    await chmod(shared, 0o777);
    try {
      await assert.rejects(read(fakeEbs({ list: () => ({ VolumeSize: 1, BlockSize: snapshotBlockBytes, Blocks: [] }) }), undefined, { tempDirectory: shared }), /writable by group or others and not sticky/);
      assert.deepEqual(await readdir(shared), []);
    } finally {
      await rm(shared, { recursive: true });
    }
  });
});
