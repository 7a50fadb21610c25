import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { buildState, readJournalFiles } from "../build-journal.js";
import { findLeftovers, isLocalJournal, LocalJournal, partialOutputPrefix, removeLeftover } from "./local-journal.js";

describe("a local build's journal", () => {
  it("is on disk when opened, with the pid and start time that tell a live build from a dead one", async () => {
    const dir = await tempDirectory();
    const journal = await LocalJournal.open("b-1", [{ type: "work directory", parent: join(dir, "work"), prefix: "b-1" }], join(dir, "state"));
    const [read] = await readJournalFiles(join(dir, "state"));
    assert.ok(read !== undefined && isLocalJournal(read.record));
    assert.equal(read.file, journal.path);
    assert.equal(read.record.pid, process.pid);
    assert.match(read.record.processStart ?? "", /^\d+$/);
    assert.deepEqual(read.record.leftovers, [{ type: "work directory", parent: join(dir, "work"), prefix: "b-1" }]);
    assert.equal(buildState(read.record), "running", "this process is alive");
    // The same pid started at another time is another process: the build is gone, whatever holds its pid now.
    assert.equal(buildState({ ...read.record, processStart: "1" }), "gone");
    const ended = spawnSync("true");
    assert.equal(buildState({ pid: ended.pid ?? 0 }), "gone");
    assert.equal(JSON.parse(await readFile(journal.path, "utf8")).builder, "local");
  });

  it("finds the build's own directories only: its prefix, real directories, not links or another build's", async () => {
    const dir = await tempDirectory();
    const work = join(dir, "work");
    const output = join(dir, "output");
    await mkdir(work);
    await mkdir(output);
    const ours = await mkdtemp(join(work, "b-1-"));
    const partial = await mkdtemp(join(output, `${partialOutputPrefix("b-1")}-`));
    await mkdtemp(join(work, "b-10-")); // another build whose id starts alike
    await mkdir(join(output, "b-1-20260101")); // a published output: never the journal's
    const victim = await mkdtemp(join(dir, "victim-"));
    await writeFile(join(victim, "keep"), "keep\n");
    await symlink(victim, join(work, "b-1-planted"));
    const leftovers = await findLeftovers({ leftovers: [
      { type: "work directory", parent: work, prefix: "b-1" },
      { type: "partial output", parent: output, prefix: partialOutputPrefix("b-1") },
    ] });
    assert.deepEqual(leftovers, [{ type: "work directory", path: ours }, { type: "partial output", path: partial }]);
    for (const leftover of leftovers) await removeLeftover(leftover);
    assert.deepEqual(await findLeftovers({ leftovers: [{ type: "work directory", parent: work, prefix: "b-1" }] }), []);
    assert.equal(await readFile(join(victim, "keep"), "utf8"), "keep\n", "a link is not followed");
  });
});
