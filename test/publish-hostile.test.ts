import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { execFileSync } from "node:child_process";
import { chmod, chown } from "node:fs/promises";
import { repoRoot, runKiln, startKiln } from "./helpers/kiln-process.js";

/**
 * kiln publish against a hostile or careless local user, with no AWS at all: what it refuses
 * must be refused before the first call (the endpoint here is a closed port), in one clear line.
 */
const scratch = mkdtempSync(join(tmpdir(), "kiln-publish-hostile-"));
const stateDir = join(scratch, "state");
const out = join(scratch, "out");
const disk = Buffer.alloc(4 * 1024 * 1024, 1);
const sha = createHash("sha256").update(disk).digest("hex");
let template: string;
const env = { KILN_STATE_DIR: stateDir, AWS_ACCESS_KEY_ID: "AKIAEXAMPLEEXAMPLE12", AWS_SECRET_ACCESS_KEY: "kiln-test-secret-never-printed", AWS_ENDPOINT_URL: "http://127.0.0.1:9", AWS_EC2_METADATA_DISABLED: "true", AWS_MAX_ATTEMPTS: "1" };

/** A dead publish's journal, as the hostile user writes it. */
async function journal(upload: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<void> {
  await rm(join(stateDir, "builds"), { recursive: true, force: true });
  await mkdir(join(stateDir, "builds"), { recursive: true, mode: 0o700 });
  const record = { buildId: "publish-20240101-000000-abcdef", builder: "publish", pid: 2 ** 22 + 7, host: hostname(), startedAt: new Date().toISOString(), region: "us-east-1",
    resources: [{ type: "snapshot", id: "snap-0123456789abcdef0", temporary: false }], upload: { disk: join(out, "disk.raw"), sha256: sha, snapshotId: "snap-0123456789abcdef0", done: "", ...upload }, ...extra };
  await writeFile(join(stateDir, "builds", `${record.buildId}.json`), JSON.stringify(record), { mode: 0o600 });
}

async function resume(): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const run = await runKiln(["publish", join(out, "disk.raw"), "--template", template, "--resume"], env);
  assert.ok(!/^\s+at /m.test(run.stderr), `no stack trace:\n${run.stderr}`);
  assert.ok(!run.stderr.includes(env.AWS_SECRET_ACCESS_KEY) && !run.stdout.includes(env.AWS_SECRET_ACCESS_KEY));
  return run;
}

describe("kiln publish --resume with a journal that kiln did not write", { timeout: 120_000 }, () => {
  before(async () => {
    await mkdir(out, { mode: 0o755 });
    await writeFile(join(out, "disk.raw"), disk, { mode: 0o644 });
    await writeFile(join(out, "audit.json"), JSON.stringify({ passed: true }));
    await writeFile(join(out, "manifest.json"), JSON.stringify({ artifacts: [{ format: "raw", path: "disk.raw", sha256: sha }], audit: { report: "audit.json" }, disk: { boot: ["uefi"] } }));
    const text = await readFile(join(repoRoot, "examples", "debian-local.yaml"), "utf8");
    template = join(repoRoot, "examples", ".publish-hostile.generated.yaml");
    await writeFile(template, text.replace("    disk:\n", "    publish:\n      amazon:\n        region: us-east-1\n        name: kiln-hostile\n    disk:\n"));
  });
  after(async () => {
    await rm(template, { force: true });
    await rm(scratch, { recursive: true, force: true });
  });

  it("refuses block ranges of millions of blocks (memory) before any AWS call", async () => {
    await journal({ done: Array.from({ length: 40 }, () => "0-50000000").join(",") });
    const run = await resume();
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /says blocks "0-50000000" were put, outside the disk's 8 blocks/);
  });

  it("refuses a snapshot the journal does not track, or that is no snapshot id", async () => {
    await journal({ snapshotId: "snap-0fedcba9876543210" });
    assert.match((await resume()).stderr, /names snapshot snap-0fedcba9876543210, which it does not track as its own/);
    await journal({ snapshotId: "snap-../../etc" });
    assert.match((await resume()).stderr, /names "snap-\.\.\/\.\.\/etc" as its snapshot/);
  });

  it("refuses a journal of a publish to another region", async () => {
    await journal({}, { region: "eu-west-1" });
    assert.match((await resume()).stderr, /is of a publish to eu-west-1, and the template publishes to us-east-1/);
  });
});

describe("files of accepted findings that are not what they seem", { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-findings-hostile-"));
  after(() => rm(dir, { recursive: true, force: true }));
  const noStack = (stderr: string): void => assert.ok(!/^\s+at /m.test(stderr), `no stack trace:\n${stderr}`);

  it("kiln audit --baseline of a FIFO (or /dev/zero) is refused at once, not read forever", async () => {
    const fifo = join(dir, "baseline.yaml");
    execFileSync("mkfifo", [fifo]);
    for (const file of [fifo, "/dev/zero"]) {
      const started = startKiln(["audit", dir, "--baseline", file], env);
      const timer = setTimeout(() => started.child.kill("SIGKILL"), 20_000);
      const run = await started.done;
      clearTimeout(timer);
      assert.equal(run.code, 2, `${file}: ${run.stderr}`);
      assert.match(run.stderr, /cannot use --baseline .*: it is not a regular file/);
      noStack(run.stderr);
    }
  });

  it("kiln share --accept-findings of a file another user can write is refused before any AWS call", async () => {
    const file = join(dir, "accepted.yaml");
    await writeFile(file, "[]\n");
    await chmod(file, 0o666);
    let run = await runKiln(["share", "ami-0123456789abcdef0", "--users", "123456789012", "--region", "us-east-1", "--accept-findings", file], env);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /cannot use --accept-findings .*: it is writable by group or others/);
    noStack(run.stderr);
    await chmod(file, 0o644);
    await chown(file, 4242, 4242);
    run = await runKiln(["share", "ami-0123456789abcdef0", "--public", "--region", "us-east-1", "--accept-findings", file], env);
    assert.match(run.stderr, /it is owned by another user \(uid 4242\)/);
    noStack(run.stderr);
  });
});
