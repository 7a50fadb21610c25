import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { chmod, chown, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { basePaths } from "../src/builders/local/base-cache.js";
import { newestModification } from "../src/image/tree-times.js";
import { sha256File } from "../src/system/sha256.js";
import { mountsUnder } from "../src/system/mounts.js";
import { findBytes } from "./helpers/bytes.js";
import { catInImage, listInImage, statInImage } from "./helpers/debugfs.js";
import { repoRoot, runKiln, startKiln } from "./helpers/kiln-process.js";

/** Shared by every run of the suite on this machine, so the real mmdebstrap base is built once. */
const cacheDir = process.env.KILN_TEST_CACHE_DIR ?? "/var/tmp/kiln-test-cache";
const fixture = join(repoRoot, "test/fixtures/local/base.yaml");
const secret = "KILN-E2E-SECRET-5d1c9b";

interface Dirs { work: string; output: string }

const scratch = mkdtempSync(join(tmpdir(), "kiln-e2e-"));
after(() => rm(scratch, { recursive: true, force: true }));
let runs = 0;

async function dirs(): Promise<Dirs> {
  const top = join(scratch, String(++runs));
  await mkdir(top);
  return { work: join(top, "work"), output: join(top, "output") };
}

function buildArgs(template: string, d: Dirs, ...extra: string[]): string[] {
  return ["build", template, "--cache-dir", cacheDir, "--work-dir", d.work, "--output-dir", d.output, ...extra];
}

async function only(dir: string): Promise<string> {
  const entries = await readdir(dir);
  assert.equal(entries.length, 1, `expected one entry in ${dir}: ${entries.join(", ")}`);
  return join(dir, entries[0] ?? "");
}

async function assertNothingLeft(d: Dirs): Promise<void> {
  assert.deepEqual(await readdir(d.work).catch(() => []), [], "work directory removed");
  assert.deepEqual(await mountsUnder(d.work), [], "no mounts left");
}

/** A template beside the fixture (so its relative paths resolve) with other provisioners. */
async function variant(name: string, provisioners: string): Promise<string> {
  const text = (await readFile(fixture, "utf8")).replace(/^provisioners:[\s\S]*$/m, `provisioners:\n${provisioners}`);
  const file = join(repoRoot, "test/fixtures/local", `.${name}.generated.yaml`);
  await writeFile(file, text);
  return file;
}

describe("kiln build with the local builder (real mmdebstrap, chroot, mke2fs)", { timeout: 15 * 60_000 }, () => {
  let first: { d: Dirs; out: string; stdout: string };

  before(async () => {
    const d = await dirs();
    const run = await runKiln(buildArgs(fixture, d));
    assert.equal(run.code, 0, `build failed:\n${run.stdout}\n${run.stderr}`);
    first = { d, out: await only(d.output), stdout: run.stdout };
  });

  it("prints one progress line per step with elapsed time", () => {
    const steps = first.stdout.split("\n").filter((l) => /^==> \[\d+\.\ds\] \d+\/15 /.test(l));
    assert.deepEqual(steps.map((l) => l.replace(/^==> \[[\d.]+s\] /, "")), [
      "1/15 check build host", "2/15 open build journal", "3/15 base root filesystem", "4/15 unpack base", "5/15 record base", "6/15 provision", "7/15 harden",
      "8/15 clean", "9/15 prepare boot", "10/15 write disk image", "11/15 convert image", "12/15 audit image", "13/15 test image", "14/15 write manifest", "15/15 publish output",
    ]);
  });

  it("puts provisioned files in the image with their owner and mode", () => {
    const disk = join(first.out, "disk.raw");
    const conf = statInImage(disk, "/etc/app/app.conf");
    assert.equal(conf?.mode, 0o640);
    assert.equal(conf?.uid, 1000, "owned by admin, the first user");
    assert.equal(conf?.gid, 1000);
    assert.equal(catInImage(disk, "/etc/app/app.conf"), "listen = 8080\n");
    assert.equal(catInImage(disk, "/opt/tree/sub/two.txt"), "two\n");
    assert.equal(statInImage(disk, "/opt/tree/one.txt")?.uid, 0);
    assert.equal(catInImage(disk, "/opt/app/setup.txt"), "configured by kiln-e2e\n", "script provisioner ran with its env");
  });

  it("leaves no key, history, host key, temp file or build-host file in the image", () => {
    const disk = join(first.out, "disk.raw");
    for (const path of ["/root/.ssh/authorized_keys", "/home/admin/.ssh/authorized_keys", "/root/.bash_history",
      "/home/admin/.psql_history", "/etc/hostname", "/etc/resolv.conf", "/usr/sbin/policy-rc.d", "/var/tmp/leftover"]) {
      assert.equal(statInImage(disk, path), undefined, `${path} must not be in the image`);
    }
    assert.deepEqual(listInImage(disk, "/etc/ssh").filter((n) => n.startsWith("ssh_host_")), []);
    assert.deepEqual(listInImage(disk, "/var/tmp"), []);
    assert.deepEqual(listInImage(disk, "/tmp"), []);
    assert.ok(listInImage(disk, "/etc/ssh").includes("sshd_config"), "openssh-server is installed");
    assert.match(first.stdout, /removed \/etc\/ssh\/ssh_host_ed25519_key/);
    assert.match(first.stdout, /removed \/root\/\.ssh\/authorized_keys/);
    // Hardened by default: without systemd, kiln's first-boot service runs from rc.local and makes host keys.
    assert.match(first.stdout, /first boot: kiln's service \(from \/etc\/rc\.local: this image has no systemd\)/);
    assert.equal(catInImage(disk, "/etc/rc.local").includes("/usr/local/sbin/kiln-first-boot"), true);
  });

  it("audits its image: nothing at or above high, the report beside the manifest", async () => {
    const report = JSON.parse(await readFile(join(first.out, "audit.json"), "utf8")) as { passed: boolean; findings: { severity: string; rule: string; message: string }[]; exemptions: string };
    assert.equal(report.passed, true);
    assert.deepEqual(report.findings.filter((f) => f.severity === "high" || f.severity === "critical"), []);
    // GnuTLS's self-test keys: listed, at info, exempt by the base kiln recorded before provisioning.
    assert.match(report.exemptions, /packaged files of the recorded base \(mmdebstrap bookworm base /);
    assert.ok(report.findings.some((f) => f.severity === "info" && /from package libgnutls30 in the base kiln recorded/.test(f.message)), JSON.stringify(report.findings));
    const manifest = JSON.parse(await readFile(join(first.out, "manifest.json"), "utf8")) as { audit: { report: string } };
    assert.equal(manifest.audit.report, "audit.json");
    // The same image read by the CLI on its own agrees.
    const run = await runKiln(["audit", join(first.out, "disk.qcow2"), "--json"]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
  });

  it("fails in the audit step when provisioning leaves a secret, and undoes everything", async () => {
    const template = await variant("audit-fails", "  - type: shell\n    inline: ['mkdir -p /root/.aws', 'printf \"[default]\\naws_access_key_id = AKIA%s\\n\" QQQQRRRRSSSSTTTT > /root/.aws/credentials']\n");
    const d = await dirs();
    const run = await runKiln(buildArgs(template, d));
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /critical credentials-file \/root\/\.aws\/credentials/);
    assert.match(run.stderr, /^error: the image fails its audit \(1 critical.*; fail_on: high\)/m);
    assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
    await assertNothingLeft(d);
    assert.deepEqual(await readdir(d.output).catch(() => []), [], "the failing image is not left as an artifact");
  });

  it("leaves no byte of a secret that was written and deleted during provisioning", async () => {
    for (const artifact of ["disk.raw", "disk.qcow2"]) {
      assert.deepEqual(await findBytes(join(first.out, artifact), secret), [], `${artifact} holds no trace of the secret`);
    }
  });

  it("never prints a sensitive variable", () => {
    assert.ok(!first.stdout.includes(secret));
    assert.match(first.stdout, /provisioning with \[redacted\]/);
  });

  it("writes a manifest whose checksums match the artifacts", async () => {
    const manifest = JSON.parse(await readFile(join(first.out, "manifest.json"), "utf8")) as {
      artifacts: { format: string; path: string; sha256: string; bytes: number }[];
      inputs: { base: { key: string; suite: string }; packages: string[] };
      kiln: { version: string };
    };
    assert.deepEqual(manifest.artifacts.map((a) => a.format), ["raw", "qcow2"]);
    for (const artifact of manifest.artifacts) assert.equal(await sha256File(join(first.out, artifact.path)), artifact.sha256);
    assert.equal(manifest.inputs.base.suite, "bookworm");
    assert.ok(manifest.inputs.packages.some((p) => p.startsWith("openssh-server=")));
    assert.equal(manifest.kiln.version, "0.1.0");
  });

  it("removes its work directory and leaves no mount", async () => {
    await assertNothingLeft(first.d);
  });

  it("gives a byte-identical disk image when built again from the cached base", async () => {
    const d = await dirs();
    const run = await runKiln(buildArgs(fixture, d));
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /base root filesystem: cached /);
    const again = await only(d.output);
    assert.equal(await sha256File(join(again, "disk.raw")), await sha256File(join(first.out, "disk.raw")));
  });

  it("builds from a given rootfs tarball, keyed by its sha256", async () => {
    const manifest = JSON.parse(await readFile(join(first.out, "manifest.json"), "utf8")) as { inputs: { base: { key: string } } };
    const tarball = basePaths(cacheDir, manifest.inputs.base.key).tarball;
    const template = join(repoRoot, "test/fixtures/local", ".tarball.generated.yaml");
    await writeFile(template, `name: from-tarball\nbuilders:\n  - type: local\n    base: {tarball: ${JSON.stringify(tarball)}}\nprovisioners:\n  - type: shell\n    inline: ['echo from-tarball > /etc/origin']\n`);
    const d = await dirs();
    const run = await runKiln(buildArgs(template, d, "--json"));
    assert.equal(run.code, 0, run.stderr);
    const events = run.stdout.trim().split("\n").map((line) => JSON.parse(line) as { event: string; name?: string; summary?: string });
    assert.equal(events.filter((e) => e.event === "step").length, 15, "one JSON step event per step");
    assert.match(events.find((e) => e.event === "step-done" && e.name === "base root filesystem")?.summary ?? "", /^tarball .* \(sha256 [0-9a-f]{12}…\)$/);
    const out = await only(d.output);
    assert.equal(catInImage(join(out, "disk.raw"), "/etc/origin"), "from-tarball\n");
    const built = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as { inputs: { base: { key: string } } };
    assert.equal(built.inputs.base.key, `sha256:${await sha256File(tarball)}`);
    await assertNothingLeft(d);
  });

  it("builds from a given root filesystem directory, dated by its newest file", async () => {
    const manifest = JSON.parse(await readFile(join(first.out, "manifest.json"), "utf8")) as { inputs: { base: { key: string } } };
    const tree = join(scratch, "given-tree");
    await mkdir(tree);
    const unpacked = spawnSync("tar", ["-x", "--numeric-owner", "-f", basePaths(cacheDir, manifest.inputs.base.key).tarball, "-C", tree], { encoding: "utf8" });
    assert.equal(unpacked.status, 0, unpacked.stderr);
    const template = join(repoRoot, "test/fixtures/local", ".directory.generated.yaml");
    await writeFile(template, `name: from-directory\nbuilders:\n  - type: local\n    base: {directory: ${JSON.stringify(tree)}}\nprovisioners:\n  - type: file\n    source: files/app.conf\n    destination: /etc/app/\n`);
    const d = await dirs();
    const run = await runKiln(buildArgs(template, d));
    assert.equal(run.code, 0, run.stderr);
    const out = await only(d.output);
    assert.equal(catInImage(join(out, "disk.raw"), "/etc/app/app.conf"), "listen = 8080\n", "a destination ending in / copies into it");
    const built = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as { inputs: { sourceDateEpoch: number; base: { key: string } } };
    assert.equal(built.inputs.base.key, `directory:${tree}`);
    assert.equal(built.inputs.sourceDateEpoch, await newestModification(tree));
    await assertNothingLeft(d);
  });

  it("builds without root, in a user namespace mapped to the user's subordinate ids", async (t) => {
    const user = "kiln-rootless-test";
    if (spawnSync("id", [user]).status !== 0) {
      const made = spawnSync("useradd", ["--create-home", "--shell", "/bin/sh", user], { encoding: "utf8" });
      assert.equal(made.status, 0, made.stderr);
    }
    if (spawnSync("runuser", ["-u", user, "--", "test", "-r", join(repoRoot, "bin/kiln.js")]).status !== 0) {
      t.skip(`${user} cannot read ${repoRoot}`);
      return;
    }
    const d = await dirs();
    await chmod(scratch, 0o755);
    await chown(join(d.output, ".."), Number(spawnSync("id", ["-u", user], { encoding: "utf8" }).stdout), 0);
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn("runuser", ["-u", user, "--", process.execPath, join(repoRoot, "bin/kiln.js"), ...buildArgs(fixture, d)], { cwd: "/", stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (b: Buffer) => { stdout += b.toString(); });
      child.stderr.on("data", (b: Buffer) => { stderr += b.toString(); });
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /check build host: rootless \(user namespace\)/);
    const disk = join(await only(d.output), "disk.raw");
    assert.deepEqual(statInImage(disk, "/etc/app/app.conf"), { type: "regular", mode: 0o640, uid: 1000, gid: 1000, size: 14 });
    assert.deepEqual(statInImage(disk, "/usr/bin/passwd"), { type: "regular", mode: 0o4755, uid: 0, gid: 0, size: statInImage(disk, "/usr/bin/passwd")?.size ?? -1 });
    assert.equal(statInImage(disk, "/root/.ssh/authorized_keys"), undefined);
    assert.deepEqual(await findBytes(disk, secret), []);
    await assertNothingLeft(d);
  });

  it("fails on a failing provisioner with its exit code and stderr, and undoes everything", async () => {
    const template = await variant("failing", "  - type: shell\n    env: {SECRET: '${{ var.secret_value }}'}\n    inline: [echo working, 'echo \"something broke $SECRET\" >&2', 'exit 3']\n");
    const d = await dirs();
    const run = await runKiln(buildArgs(template, d));
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: provisioner 1 \(shell\) failed: its script exited with code 3\n {2}last lines of stderr:\n {4}something broke \[redacted\]$/m);
    assert.ok(!run.stderr.includes(secret), "the sensitive value is not in the error");
    assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
    await assertNothingLeft(d);
    assert.deepEqual(await readdir(d.output).catch(() => []), [], "no output directory");
  });

  it("runs scripts in order by their own #! and an execute_command, and downloads from the image", async () => {
    const downloads = join(scratch, "downloads");
    const template = await variant("scripts", [
      "  - type: shell",
      "    env: {STAGE: two}",
      "    scripts: [files/scripts/10-first.sh, files/scripts/20-second.sh]",
      "    execute_command: \"sh -c '{{ .Vars }} {{ .Path }} last'\"",
      "  - type: file",
      "    direction: download",
      "    source: /etc/kiln-stages",
      `    destination: ${downloads}/stages.txt`,
      "  - type: file",
      "    direction: download",
      "    source: /etc/apt",
      `    destination: ${downloads}/`,
      "",
    ].join("\n"));
    const d = await dirs();
    const run = await runKiln(buildArgs(template, d));
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(await readFile(join(downloads, "stages.txt"), "utf8"), /^first two from bash \d+\nsecond two last\n$/);
    assert.ok((await readdir(join(downloads, "apt"))).includes("sources.list.d"), "a directory comes down whole");
    assert.equal(catInImage(join(await only(d.output), "disk.raw"), "/etc/kiln-stages").split("\n")[1], "second two last");
  });

  it("keeps the work directory with --on-error abort and says where it is", async () => {
    const template = await variant("abort", "  - type: shell\n    inline: ['exit 4']\n");
    const d = await dirs();
    // Its journal is kept with the work directory: in the test's own state directory, removed with it.
    const run = await runKiln(buildArgs(template, d, "--on-error", "abort"), { KILN_STATE_DIR: join(d.work, "..", "state") });
    assert.equal(run.code, 1);
    const kept = await only(d.work);
    assert.match(run.stderr, new RegExp(`left behind: remove work directory ${kept}`));
    assert.deepEqual(await mountsUnder(d.work), []);
  });

  it("cleans up after Ctrl-C while mmdebstrap builds a base: no partial base, no scratch tree, no process", async () => {
    const cache = join(scratch, "interrupted-cache");
    const template = join(repoRoot, "test/fixtures/local", ".base-interrupt.generated.yaml");
    await writeFile(template, "name: interrupted\nbuilders:\n  - type: local\n    base: {mmdebstrap: {suite: bookworm, variant: minbase, packages: [less]}}\n");
    const d = await dirs();
    const kiln = startKiln(["build", template, "--cache-dir", cache, "--work-dir", d.work, "--output-dir", d.output]);
    const deadline = Date.now() + 180_000;
    while (!/mmdebstrap: I: (extracting|installing)/.test(kiln.stdout())) {
      assert.ok(Date.now() < deadline, `mmdebstrap never got going:\n${kiln.stdout()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    kiln.child.kill("SIGINT");
    const run = await kiln.done;
    assert.equal(run.code, 130, run.stderr);
    assert.deepEqual(await readdir(join(cache, "bases")), [], "no partial base in the cache");
    await assertNothingLeft(d);
    for (const pid of (await readdir("/proc")).filter((p) => /^\d+$/.test(p))) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      assert.ok(!cmdline.includes(cache), `process ${pid} (${cmdline.replaceAll("\0", " ")}) is still running`);
    }
  });

  it("cleans up after Ctrl-C during provisioning: no mount, no work directory, no process", async () => {
    const marker = "3600.4242";
    const template = await variant("interrupt", `  - type: shell\n    inline: ['echo ready-for-signal', 'sleep ${marker}']\n`);
    const d = await dirs();
    const kiln = startKiln(buildArgs(template, d));
    const deadline = Date.now() + 120_000;
    while (!kiln.stdout().includes("ready-for-signal")) {
      assert.ok(Date.now() < deadline, `never reached provisioning:\n${kiln.stdout()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    kiln.child.kill("SIGINT");
    const run = await kiln.done;
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, /error: build cancelled/);
    await assertNothingLeft(d);
    const procs = await readdir("/proc");
    for (const pid of procs.filter((p) => /^\d+$/.test(p))) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      assert.ok(!cmdline.includes(marker), `process ${pid} (${cmdline.replaceAll("\0", " ")}) is still running`);
    }
  });
});
