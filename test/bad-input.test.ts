import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runKiln } from "./helpers/kiln-process.js";

describe("bad input to a local build: one clear error, exit 2, nothing created", () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-bad-input-"));
  after(() => rm(dir, { recursive: true, force: true }));

  it("refuses an image size the output's disk cannot hold before making anything", async () => {
    const template = join(dir, "huge.yaml");
    // Within what kiln writes (16T), far beyond this machine's free space.
    await writeFile(template, "name: huge\nbuilders:\n  - type: local\n    base: {mmdebstrap: {suite: bookworm}}\n    image: {size: 15T}\n");
    const work = join(dir, "work");
    const output = join(dir, "out");
    const run = await runKiln(["build", template, "--work-dir", work, "--output-dir", output, "--cache-dir", join(dir, "cache")]);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /^error: builders\.0\.image\.size 15T is more than the [\d.]+ GiB free where the output goes \(\S+\)\n {2}\(give a smaller size/m);
    assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
    assert.deepEqual(await readdir(dir), ["huge.yaml"], "no work, cache or output directory");
  });
});
