import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { inspectImage } from "./run-test.js";

const mib = 1024 * 1024;
const scratch = mkdtempSync(join(tmpdir(), "kiln-inspect-"));
after(() => rm(scratch, { recursive: true, force: true }));

describe("the image kiln test boots", () => {
  it("reads a fixed VHD (Azure's format, as kiln converts it) as a VHD, not as a raw disk with its footer", async () => {
    const raw = join(scratch, "disk.raw");
    await writeFile(raw, "");
    await truncate(raw, 4 * mib);
    const vhd = join(scratch, "disk.vhd");
    execFileSync("qemu-img", ["convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", raw, vhd]);
    // A fixed VHD is the raw disk and a 512-byte footer: qemu-img's probe alone calls it raw.
    assert.deepEqual(await inspectImage(vhd, new AbortController().signal), { format: "vpc", virtualSize: 4 * mib });
    assert.deepEqual(await inspectImage(raw, new AbortController().signal), { format: "raw", virtualSize: 4 * mib });
  });
});
