import assert from "node:assert/strict";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runKiln } from "./helpers/kiln-process.js";

// Another local user plants a journal where kiln reads them (a KILN_STATE_DIR they made first,
// or could write to): kiln cleanup --stale, run as root, must not remove what it names.
const nobody = 65534;
const journal = (buildId: string, parent: string, prefix: string): string => `${JSON.stringify({
  buildId, builder: "local", pid: 2 ** 22 + 1, host: hostname(), startedAt: "2024-01-01T00:00:00.000Z",
  leftovers: [{ type: "work directory", parent, prefix }],
})}\n`;

describe("kiln cleanup trusts only journals no other user could have written", { skip: process.getuid?.() === 0 ? false : "needs root (chown)" }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-attack-cleanup-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const victimIn = (name: string): string => {
    const victim = join(dir, name);
    mkdirSync(join(victim, "keep-precious"), { recursive: true });
    writeFileSync(join(victim, "keep-precious", "data"), "root's data\n");
    return victim;
  };

  it("refuses a state directory another user owns, and removes nothing its journals name", async () => {
    const victim = victimIn("victim-1");
    const state = join(dir, "shared-state");
    mkdirSync(join(state, "builds"), { recursive: true });
    chownSync(join(state, "builds"), nobody, nobody);
    chmodSync(join(state, "builds"), 0o777);
    writeFileSync(join(state, "builds", "evil.json"), journal("evil", victim, "keep"));
    chownSync(join(state, "builds", "evil.json"), nobody, nobody);
    const run = await runKiln(["cleanup", "--stale", "--yes"], { KILN_STATE_DIR: state });
    assert.ok(existsSync(join(victim, "keep-precious", "data")), `removed root's directory: ${run.stdout}`);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /refusing to use .*shared-state\/builds.*owned by another user \(uid 65534\)/);
    assert.doesNotMatch(run.stderr, /\n\s+at /); // one message, no stack
  });

  it("refuses a journal another user owns, even in a directory of ours", async () => {
    const victim = victimIn("victim-2");
    const state = join(dir, "state");
    mkdirSync(join(state, "builds"), { recursive: true, mode: 0o700 });
    writeFileSync(join(state, "builds", "evil.json"), journal("evil", victim, "keep"), { mode: 0o666 });
    chownSync(join(state, "builds", "evil.json"), nobody, nobody);
    const run = await runKiln(["cleanup", "--stale", "--yes"], { KILN_STATE_DIR: state });
    assert.ok(existsSync(join(victim, "keep-precious", "data")), `removed root's directory: ${run.stdout}`);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /refusing to use .*evil\.json.*owned by another user/);
  });
});
