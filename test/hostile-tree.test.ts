import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { mountsUnder } from "../src/system/mounts.js";
import { catInImage, listInImage, statInImage } from "./helpers/debugfs.js";
import { repoRoot, startKiln, type KilnRun } from "./helpers/kiln-process.js";

/**
 * A hostile image's tree against the build host (issue 13, item 4): what the host reads from
 * the tree is read as data, and Ctrl-C ends a build whatever it is waiting for. The base is the
 * one test/local-build.test.ts builds, from the same cache.
 */
const cacheDir = process.env.KILN_TEST_CACHE_DIR ?? "/var/tmp/kiln-test-cache";
const scratch = mkdtempSync(join(tmpdir(), "kiln-hostile-"));
after(() => rm(scratch, { recursive: true, force: true }));
let runs = 0;

interface Build { work: string; output: string; template: string }

async function build(name: string, provisioners: string): Promise<Build> {
  const top = join(scratch, String(++runs));
  await mkdir(top);
  const base = await readFile(join(repoRoot, "test/fixtures/local/base.yaml"), "utf8");
  // The same base (so the same cache entry), one format, and only these provisioners.
  const text = base.replace("formats: [raw, qcow2]", "formats: [raw]").replace(/^variables:[\s\S]*?(?=^builders:)/m, "").replace(/^provisioners:[\s\S]*$/m, `provisioners:\n${provisioners}`);
  const template = join(repoRoot, "test/fixtures/local", `.hostile-${name}.generated.yaml`);
  await writeFile(template, text);
  return { work: join(top, "work"), output: join(top, "output"), template };
}

function start(b: Build): ReturnType<typeof startKiln> {
  return startKiln(["build", b.template, "--cache-dir", cacheDir, "--work-dir", b.work, "--output-dir", b.output]);
}

/** The run's result, or a failure (and the process killed) when it takes longer than `seconds`. */
async function within(seconds: number, kiln: ReturnType<typeof startKiln>): Promise<KilnRun> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      kiln.child.kill("SIGKILL");
      reject(new Error(`kiln still running after ${seconds}s:\n${kiln.stdout()}`));
    }, seconds * 1000);
  });
  try {
    return await Promise.race([kiln.done, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function assertNothingLeft(b: Build): Promise<void> {
  assert.deepEqual(await readdir(b.work).catch(() => []), [], "work directory removed");
  assert.deepEqual(await mountsUnder(b.work), [], "no mounts left");
}

async function waitFor(text: string, kiln: ReturnType<typeof startKiln>): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!kiln.stdout().includes(text)) {
    assert.ok(Date.now() < deadline, `never printed ${text}:\n${kiln.stdout()}`);
    assert.equal(kiln.child.exitCode, null, `kiln exited early:\n${kiln.stdout()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("a hostile image's tree cannot reach the build host", { timeout: 10 * 60_000 }, () => {
  it("a fifo at /var/lib/dpkg/status fails the build at once, naming it, and undoes everything", async () => {
    const b = await build("fifo-status", "  - type: shell\n    inline: ['rm /var/lib/dpkg/status', 'mkfifo /var/lib/dpkg/status']\n");
    const run = await within(120, start(b));
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /^error: the image's \/var\/lib\/dpkg\/status is a fifo: kiln reads only regular files from the image's tree/m);
    assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
    await assertNothingLeft(b);
  });

  it("downloads are data: no host file through a link, no setuid, no fifo; a later upload carries none of the host's files", async () => {
    const downloads = join(scratch, "downloads");
    const host = join(scratch, "host-dpkg");
    await mkdir(host);
    await writeFile(join(host, "status"), "Package: host-only-package\nStatus: install ok installed\nVersion: 6.6.6\n\n");
    // A file of the build host, and the image's own file at the same absolute path.
    const hostSecret = join(host, "secret");
    await writeFile(hostSecret, "HOST-ONLY-SECRET\n");
    // Validate wants an upload's source to exist; the downloads replace these.
    await mkdir(join(downloads, "dl"), { recursive: true });
    await writeFile(join(downloads, "evil"), "placeholder\n");
    const b = await build("downloads", [
      "  - type: shell",
      "    inline:",
      `      - mkdir -p ${host} && echo image-data > ${hostSecret} && ln -s ${hostSecret} /etc/kiln-evil`,
      "      - mkdir -p /opt/dl/sub && echo data > /opt/dl/sub/file && ln -s sub/file /opt/dl/inside",
      "      - ln -s /etc/shadow /opt/dl/shadow-link && ln -s ../../../../../../etc/shadow /opt/dl/sub/climb",
      "      - cp /bin/true /opt/dl/suid && chmod 6755 /opt/dl/suid && mkfifo /opt/dl/fifo",
      "  - {type: file, direction: download, source: /etc/kiln-evil, destination: " + join(downloads, "evil") + "}",
      "  - {type: file, direction: download, source: /opt/dl, destination: " + downloads + "/}",
      "  - {type: file, source: " + join(downloads, "evil") + ", destination: /root/carried}",
      "  - {type: file, source: " + join(downloads, "dl") + ", destination: /opt/up}",
      "  - {type: shell, inline: ['rm -f /opt/dl/suid /opt/up/suid', 'mv /var/lib/dpkg/status /var/lib/dpkg/status.real', 'ln -s " + join(host, "status") + " /var/lib/dpkg/status']}",
      "",
    ].join("\n"));
    const run = await within(300, start(b));
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const [out] = await readdir(b.output);
    const disk = join(b.output, out ?? "", "disk.raw");
    // A link downloaded brings what it points to in the image, as a regular file.
    assert.ok((await lstat(join(downloads, "evil"))).isFile());
    assert.equal(await readFile(join(downloads, "evil"), "utf8"), "image-data\n");
    assert.equal(catInImage(disk, "/root/carried"), "image-data\n", "the upload carried the image's file, not the host's");

    const dl = join(downloads, "dl");
    assert.deepEqual((await readdir(dl)).sort(), ["inside", "sub", "suid"]);
    assert.equal((await lstat(join(dl, "suid"))).mode & 0o6000, 0, "setuid and setgid stripped");
    assert.equal(await readlink(join(dl, "inside")), "sub/file");
    assert.deepEqual(await readdir(join(dl, "sub")), ["file"]);
    for (const skipped of ["dl/fifo is not a file, directory or link", "dl/shadow-link is a link to /etc/shadow, outside the copy", "dl/sub/climb is a link to ../../../../../../etc/shadow, outside the copy"]) {
      assert.ok(run.stdout.includes(skipped), `warned: ${skipped}\n${run.stdout}`);
    }
    assert.deepEqual(listInImage(disk, "/opt/up").sort(), ["inside", "sub"]);
    assert.equal(statInImage(disk, "/opt/up/shadow-link"), undefined);

    // The manifest's package list resolved the link inside the tree, where there is no such file.
    const manifest = JSON.parse(await readFile(join(b.output, out ?? "", "manifest.json"), "utf8")) as { inputs: { packages: string[] } };
    assert.ok(!manifest.inputs.packages.some((p) => p.includes("host-only-package")), manifest.inputs.packages.join(" "));
    await assertNothingLeft(b);
  });

  it("Ctrl-C ends a build whose provisioner blocks on a fifo: prompt exit, cleanup done, work directory removed", async () => {
    const b = await build("sigint-fifo", "  - type: shell\n    inline: ['mkfifo /tmp/kiln-block', 'echo ready-for-signal', 'cat /tmp/kiln-block']\n");
    const kiln = start(b);
    await waitFor("ready-for-signal", kiln);
    const sent = Date.now();
    kiln.child.kill("SIGINT");
    const run = await within(30, kiln);
    assert.ok(Date.now() - sent < 10_000, `took ${Date.now() - sent} ms to stop`);
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, /error: build cancelled/);
    await assertNothingLeft(b);
  });
});
