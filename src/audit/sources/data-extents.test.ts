import assert from "node:assert/strict";
import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { dataExtents, parseFilefrag } from "./data-extents.js";
import { scanRaw } from "../candidates/raw-scan.js";

describe("data extents of a sparse image", () => {
  it("finds the data of a sparse file, and a secret there is found as in a full scan", async () => {
    const dir = await tempDirectory();
    const file = join(dir, "sparse.raw");
    await writeFile(file, "");
    const handle = await open(file, "r+");
    await handle.truncate(64 * 1024 * 1024);
    const secretLine = `db_${"password"} = ${["s3cr3t", "Value"].join("-")}\n`;
    for (const offset of [4096 * 3, 40 * 1024 * 1024 + 100]) await handle.write(Buffer.from(secretLine), 0, undefined, offset);
    await handle.close();

    const data = await dataExtents(file);
    assert.ok(data !== undefined, "this machine's filesystem gives an extent map");
    const covered = data.reduce((n, [from, to]) => n + to - from, 0);
    assert.ok(covered <= 1024 * 1024, `only the written blocks are data (${covered} bytes)`);
    for (const offset of [4096 * 3, 40 * 1024 * 1024 + 100]) assert.ok(data.some(([from, to]) => offset >= from && offset < to), `${offset} is in a data extent`);

    const everything = (await scanRaw(file, 0, 64 * 1024 * 1024)).hits;
    const dataOnly = (await scanRaw(file, 0, 64 * 1024 * 1024, { data })).hits;
    assert.equal(everything.length, 2);
    assert.deepEqual(dataOnly, everything);
  });

  it("trusts no listing it does not understand", () => {
    assert.equal(parseFilefrag("something else entirely\n"), undefined);
    const listing = [
      "Filesystem type is: ef53",
      "File size of x is 1048576 (256 blocks of 4096 bytes)",
      " ext:     logical_offset:        physical_offset: length:   expected: flags:",
      "   0:        0..       0:      100..       100:      1:            ",
      "   1:        1..       1:      500..       500:      1:        101:",
      "   2:       10..      11:      600..       601:      2:        501: last,eof",
      "x: 3 extents found",
    ].join("\n");
    assert.deepEqual(parseFilefrag(listing), [[0, 8192], [40960, 49152]]);
    assert.equal(parseFilefrag(listing.replace("3 extents found", "1 extent found")), undefined, "a listing longer than its count is not trusted");
  });
});
