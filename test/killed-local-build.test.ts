import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { mountsUnder } from "../src/system/mounts.js";
import { repoRoot, runKiln, startKiln } from "./helpers/kiln-process.js";

/** The same cache as test/local-build.test.ts: the fixture's base is built once per machine. */
const cacheDir = process.env.KILN_TEST_CACHE_DIR ?? "/var/tmp/kiln-test-cache";
const fixture = join(repoRoot, "test/fixtures/local/base.yaml");
const scratch = mkdtempSync(join(tmpdir(), "kiln-killed-"));
after(() => rm(scratch, { recursive: true, force: true }));

interface Dirs { work: string; output: string; state: string }
let runs = 0;

async function dirs(): Promise<Dirs> {
  const top = join(scratch, String(++runs));
  await mkdir(top);
  return { work: join(top, "work"), output: join(top, "output"), state: join(top, "state") };
}

/** The fixture's base (so the cached tarball is used) with other provisioners. */
async function template(name: string, provisioners: string): Promise<string> {
  const text = (await readFile(fixture, "utf8")).replace(/^provisioners:[\s\S]*$/m, `provisioners:\n${provisioners}`);
  const file = join(repoRoot, "test/fixtures/local", `.killed-${name}.generated.yaml`);
  await writeFile(file, text);
  return file;
}

/** Starts a build and SIGKILLs it the moment its output shows `line`: no cleanup of its own runs. */
async function killBuildAt(file: string, d: Dirs, line: RegExp): Promise<string> {
  const kiln = startKiln(["build", file, "--cache-dir", cacheDir, "--work-dir", d.work, "--output-dir", d.output], { KILN_STATE_DIR: d.state });
  const timer = setTimeout(() => kiln.child.kill("SIGKILL"), 240_000);
  kiln.child.stdout?.on("data", () => { if (line.test(kiln.stdout())) kiln.child.kill("SIGKILL"); });
  const run = await kiln.done;
  clearTimeout(timer);
  assert.ok(line.test(run.stdout), `the build never reached ${String(line)}:\n${run.stdout}\n${run.stderr}`);
  assert.equal(kiln.child.signalCode, "SIGKILL", `the build ended before it was killed:\n${run.stdout}\n${run.stderr}`);
  return run.stdout;
}

/** What in the output directory a user or a script could take for a built image. */
async function finishedLooking(output: string): Promise<string[]> {
  return (await readdir(output).catch(() => [] as string[])).filter((name) => !name.startsWith(".partial-"));
}

async function journals(d: Dirs): Promise<string[]> {
  return (await readdir(join(d.state, "builds")).catch(() => [] as string[])).filter((n) => n.endsWith(".json"));
}

/** Processes a killed build left (its provisioner's sleep): ended here, by pid, so nothing outlives the test. */
async function endProcessesWith(marker: string): Promise<void> {
  for (const pid of (await readdir("/proc")).filter((p) => /^\d+$/.test(p))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(marker)) {
      try { process.kill(Number(pid), "SIGKILL"); } catch { /* gone already */ }
    }
  }
}

describe("a local build killed with SIGKILL (real build, real kiln cleanup)", { timeout: 15 * 60_000 }, () => {
  it("killed while it provisions: nothing looks finished, a live build is left alone, and cleanup --stale removes its work directory", async () => {
    const marker = "3600.4343";
    const file = await template("provision", `  - type: shell\n    inline: ['echo ready-for-signal', 'sleep ${marker}']\n`);
    const d = await dirs();
    const kiln = startKiln(["build", file, "--cache-dir", cacheDir, "--work-dir", d.work, "--output-dir", d.output], { KILN_STATE_DIR: d.state });
    after(() => endProcessesWith(marker));
    const deadline = Date.now() + 180_000;
    while (!kiln.stdout().includes("ready-for-signal")) {
      assert.ok(Date.now() < deadline && kiln.child.exitCode === null, `never reached provisioning:\n${kiln.stdout()}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    // The build is alive: its journal and its work directory are not another cleanup's to take.
    assert.equal((await journals(d)).length, 1, "the running build has a journal");
    const stale = await runKiln(["cleanup", "--stale"], { KILN_STATE_DIR: d.state });
    assert.equal(stale.code, 0, stale.stdout + stale.stderr);
    assert.match(stale.stdout, /no stale build journals/);
    const buildId = (await journals(d))[0]?.replace(/\.json$/, "") ?? "";
    const named = await runKiln(["cleanup", buildId, "--yes"], { KILN_STATE_DIR: d.state });
    assert.equal(named.code, 2, named.stdout + named.stderr);
    assert.match(named.stderr, new RegExp(`build ${buildId} is still running`));
    assert.equal((await readdir(d.work)).length, 1, "the live build's work directory is still there");
    assert.equal((await journals(d)).length, 1, "and so is its journal");

    kiln.child.kill("SIGKILL");
    await kiln.done;
    await endProcessesWith(marker);
    assert.deepEqual(await finishedLooking(d.output), [], "nothing in the output directory looks like a built image");
    const [workDirectory] = await readdir(d.work);
    assert.ok(workDirectory?.startsWith(buildId), `the killed build left its work directory: ${workDirectory ?? "none"}`);

    const dry = await runKiln(["cleanup", "--stale", "--dry-run"], { KILN_STATE_DIR: d.state });
    assert.match(dry.stdout, new RegExp(`would remove work directory ${join(d.work, workDirectory ?? "")}`));
    assert.equal((await readdir(d.work)).length, 1, "a dry run removes nothing");
    const cleanup = await runKiln(["cleanup", "--stale"], { KILN_STATE_DIR: d.state });
    assert.equal(cleanup.code, 0, cleanup.stdout + cleanup.stderr);
    assert.match(cleanup.stdout, new RegExp(`build ${buildId} \\(local, its process \\d+ is gone\\)`));
    assert.match(cleanup.stdout, new RegExp(`removed work directory ${join(d.work, workDirectory ?? "")}`));
    assert.deepEqual(await readdir(d.work), [], "work directory removed");
    assert.deepEqual(await mountsUnder(d.work), []);
    assert.deepEqual(await journals(d), [], "its journal is gone once everything it named is");
    const again = await runKiln(["cleanup", "--stale"], { KILN_STATE_DIR: d.state });
    assert.match(again.stdout, /no stale build journals/);
  });

  it("a failed audit publishes nothing; --on-error abort keeps the image under its partial name to inspect, and kiln cleanup BUILD_ID removes it", async () => {
    const file = await template("audit-fails", "  - type: shell\n    inline: ['mkdir -p /root/.aws', 'printf \"[default]\\naws_access_key_id = AKIA%s\\n\" QQQQRRRRSSSSTTTT > /root/.aws/credentials']\n");
    const d = await dirs();
    const run = await runKiln(["build", file, "--cache-dir", cacheDir, "--work-dir", d.work, "--output-dir", d.output, "--on-error", "abort"], { KILN_STATE_DIR: d.state });
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /^error: the image fails its audit/m);
    assert.match(run.stderr, /build with --on-error abort: it keeps it unpublished in .*\/\.partial-<build id>-… \(kiln audit DIR\/disk\.raw; kiln cleanup BUILD_ID removes it\)/);
    assert.deepEqual(await finishedLooking(d.output), [], "nothing in the output directory looks like a built image");
    const [partial = ""] = await readdir(d.output);
    const kept = join(d.output, partial);
    assert.match(run.stderr, new RegExp(`left behind: remove partial output ${kept}`));
    const inspected = await runKiln(["audit", join(kept, "disk.raw")]);
    assert.notEqual(inspected.code, 0);
    assert.match(inspected.stdout, /credentials-file[^]*\/root\/\.aws\/credentials/, "the kept image is the one that failed");

    const buildId = (await journals(d))[0]?.replace(/\.json$/, "") ?? "";
    assert.ok(partial.startsWith(`.partial-${buildId}-`), `${partial} is named by build ${buildId}`);
    const cleanup = await runKiln(["cleanup", buildId], { KILN_STATE_DIR: d.state });
    assert.equal(cleanup.code, 0, cleanup.stdout + cleanup.stderr);
    assert.match(cleanup.stdout, new RegExp(`removed partial output ${kept}`));
    assert.match(cleanup.stdout, /removed work directory /);
    assert.deepEqual(await readdir(d.output), []);
    assert.deepEqual(await readdir(d.work), []);
    assert.deepEqual(await journals(d), []);
  });

  for (const [step, line] of [["audit", /^==> \[[\d.]+s\] \d+\/\d+ audit image$/m], ["convert", /^==> \[[\d.]+s\] \d+\/\d+ convert image$/m]] as const) {
    it(`killed as it starts to ${step} the image: the image is only partial output, and cleanup --stale removes it`, async () => {
      const file = await template(step, "  - type: shell\n    inline: ['echo provisioned > /etc/provisioned']\n");
      const d = await dirs();
      await killBuildAt(file, d, line);
      assert.deepEqual(await finishedLooking(d.output), [], "nothing in the output directory looks like a built image");
      const partial = await readdir(d.output);
      assert.equal(partial.length, 1, `one partial output: ${partial.join(", ")}`);
      assert.ok((await readdir(join(d.output, partial[0] ?? ""))).includes("disk.raw"), "the image was written, under the partial name");

      const cleanup = await runKiln(["cleanup", "--stale"], { KILN_STATE_DIR: d.state });
      assert.equal(cleanup.code, 0, cleanup.stdout + cleanup.stderr);
      assert.match(cleanup.stdout, new RegExp(`removed partial output ${join(d.output, partial[0] ?? "")}`));
      assert.match(cleanup.stdout, /removed work directory /);
      assert.deepEqual(await readdir(d.output), [], "partial output removed");
      assert.deepEqual(await readdir(d.work), [], "work directory removed");
      assert.deepEqual(await journals(d), []);
    });
  }
});
