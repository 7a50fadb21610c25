import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../test/helpers/temp.js";
import { blockRanges, parseBlockRanges } from "./steps/block-ranges.js";
import { blockDigest, candidateBlocks, linearChecksum, readBlock, snapshotBlockBytes, volumeGiB } from "./snapshot-blocks.js";

describe("snapshot blocks", () => {
  it("aggregates the raw per-block digests in block-index order, whatever order they were put in", () => {
    const a = blockDigest(Buffer.alloc(snapshotBlockBytes, 1));
    const b = blockDigest(Buffer.alloc(snapshotBlockBytes, 2));
    const expected = createHash("sha256").update(Buffer.concat([a, b])).digest("base64");
    assert.equal(linearChecksum(new Map([[7, b], [3, a]])), expected);
    // Not the hash of the base64 texts, nor of the blocks themselves.
    assert.notEqual(linearChecksum(new Map([[3, a], [7, b]])), createHash("sha256").update(a.toString("base64") + b.toString("base64")).digest("base64"));
  });

  it("reads only blocks that touch data, and none past the disk", () => {
    const mib = 1024 * 1024;
    assert.deepEqual(candidateBlocks(4 * mib, [[0, 1], [3 * mib - 1, 3 * mib + 1]]), [0, 5, 6]);
    assert.deepEqual(candidateBlocks(mib + 100, undefined), [0, 1, 2]);
    assert.deepEqual(candidateBlocks(mib, [[0, 64 * mib]]), [0, 1]);
  });

  it("skips an all-zero block and pads the last one with zeros", async () => {
    const dir = await tempDirectory();
    const file = join(dir, "disk");
    const bytes = snapshotBlockBytes + 10;
    const data = Buffer.alloc(bytes);
    data.write("tail", snapshotBlockBytes);
    await writeFile(file, data);
    const handle = await open(file, "r");
    try {
      assert.equal(await readBlock(handle, bytes, 0), undefined);
      const last = await readBlock(handle, bytes, 1);
      assert.equal(last?.length, snapshotBlockBytes);
      assert.equal(last?.toString("latin1", 0, 4), "tail");
      assert.ok(last?.subarray(10).every((b) => b === 0));
    } finally {
      await handle.close();
    }
  });

  it("sizes the snapshot in whole GiB, at least one", () => {
    assert.equal(volumeGiB(1), 1);
    assert.equal(volumeGiB(1024 ** 3), 1);
    assert.equal(volumeGiB(1024 ** 3 + 1), 2);
  });

  it("journals the blocks done as ranges and reads them back, refusing anything else", () => {
    assert.equal(blockRanges([5, 1, 2, 3, 9, 10]), "1-3,5,9-10");
    assert.deepEqual(parseBlockRanges("1-3,5,9-10", 11), [1, 2, 3, 5, 9, 10]);
    assert.deepEqual(parseBlockRanges("", 11), []);
    assert.throws(() => parseBlockRanges("1-3,x", 11), /not a block range/);
    assert.throws(() => parseBlockRanges("9-3", 11), /not a block range/);
    // A journal edited to name blocks past the disk (or millions of them) is refused, not expanded.
    assert.throws(() => parseBlockRanges("0-50000000", 11), /not a block range of a disk of 11 blocks/);
  });
});
