import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { testImage, type VmTestResult } from "../src/vm-test/run-test.js";
import { RecordingReporter } from "./helpers/recording-reporter.js";
import { runKiln } from "./helpers/kiln-process.js";

/**
 * Hostile image files given to `kiln test`: whatever their metadata names, the guest must never
 * be given another file of this machine to read. Each is refused before QEMU starts.
 */
const scratch = mkdtempSync(join(tmpdir(), "kiln-test-hostile-"));
after(() => rm(scratch, { recursive: true, force: true }));

async function refused(image: string, message: RegExp): Promise<void> {
  const run = await runKiln(["test", image, "--firmware", "bios", "--boots", "1", "--timeout", "30", "--log-dir", join(scratch, `logs-${Math.random().toString(36).slice(2)}`)]);
  assert.equal(run.code, 2, `kiln test did not refuse ${image}:\n${run.stdout}\n${run.stderr}`);
  assert.doesNotMatch(run.stdout + run.stderr, /bios boot 1: instance/, "QEMU was started");
  assert.match(run.stderr, message);
}

describe("kiln test refuses an image whose metadata names another file", { timeout: 5 * 60_000 }, () => {
  it("a qcow2 whose data lives in an external data file (data-file: any file or device here)", async () => {
    const secret = join(scratch, "host-secret");
    const image = join(scratch, "data-file.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-o", `data_file=${secret},data_file_raw=on`, image, "1M"]);
    await writeFile(secret, "a file of this machine the guest must not read\n");
    await refused(image, /data-file\.qcow2 is a qcow2 whose data is in another file \(.*host-secret\)/);
  });

  it("a vmdk descriptor whose extent is /etc/shadow", async () => {
    const image = join(scratch, "descriptor.vmdk");
    await writeFile(image, [
      "# Disk DescriptorFile", "version=1", "CID=fffffffe", "parentCID=ffffffff", "createType=\"monolithicFlat\"",
      "RW 2048 FLAT \"/etc/shadow\" 0", "ddb.adapterType = \"ide\"", "",
    ].join("\n"));
    await refused(image, /descriptor\.vmdk is a vmdk whose data is in other files \(\/etc\/shadow\)/);
  });

  it("a raw-named file that probes as a qcow2 overlay of /etc/shadow", async () => {
    const image = join(scratch, "disk.raw");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/shadow", image, "1M"]);
    await refused(image, /is a qcow2 overlay of another file \(\/etc\/shadow\)/);
  });
});

describe("kiln test on a disk with nothing to boot", { timeout: 10 * 60_000 }, () => {
  // A bare filesystem's disk.raw, or any disk without a boot loader: the firmware says so on the console.
  for (const firmware of ["bios", "uefi"]) {
    it(`fails at once by ${firmware}, naming the cause, instead of waiting out --timeout`, async () => {
      const image = join(scratch, `nothing-${firmware}.raw`);
      execFileSync("truncate", ["-s", "8M", image]);
      const started = Date.now();
      const run = await runKiln(["test", image, "--firmware", firmware, "--boots", "1", "--timeout", "300", "--json", "--log-dir", join(scratch, `logs-nothing-${firmware}`)]);
      const result = JSON.parse(run.stdout) as VmTestResult;
      assert.equal(run.code, 1);
      const detail = result.boots[0]?.checks.find((c) => !c.passed)?.detail ?? "";
      assert.match(detail, new RegExp(`the ${firmware} boot failed: the firmware found nothing to boot on the disk`), detail);
      assert.ok(Date.now() - started < 200_000, `took ${Math.round((Date.now() - started) / 1000)}s`);
    });
  }
});

describe("kiln test's console logs", { timeout: 5 * 60_000 }, () => {
  it("boots once per firmware, however often the template's test.firmware names it", async () => {
    const image = join(scratch, "twice.raw");
    execFileSync("truncate", ["-s", "8M", image]);
    const logDirectory = join(scratch, "logs-twice");
    execFileSync("mkdir", [logDirectory]);
    const result = await testImage({
      image, firmware: ["bios", "bios"], user: "root", commands: [], logDirectory, bootTimeoutSeconds: 120, keep: false, boots: 1,
      signal: new AbortController().signal, report: new RecordingReporter(),
    });
    assert.deepEqual(result.boots.map((b) => [b.firmware, b.boot]), [["bios", 1]]);
  });

  it("are never written over: a --log-dir that already holds them is refused with a usage error", async () => {
    const image = join(scratch, "again.raw");
    execFileSync("truncate", ["-s", "8M", image]);
    const logs = join(scratch, "logs-again");
    const args = ["test", image, "--firmware", "bios", "--boots", "1", "--log-dir", logs];
    assert.equal((await runKiln(args)).code, 1);
    const again = await runKiln(args);
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, /console-bios-1\.log already exists/);
  });
});

describe("kiln test's console log in a directory another user can write", { timeout: 5 * 60_000 }, () => {
  // Another user who can write the log directory (the default one is beside the image) swaps the
  // console log for a symlink between kiln creating it and QEMU opening it: a QEMU that opened it by
  // name would truncate the link's target and write the guest's console into it.
  it("QEMU writes the console through the file kiln created, not through its name", async () => {
    const image = join(scratch, "swap.raw");
    execFileSync("truncate", ["-s", "8M", image]);
    const victim = join(scratch, "victim-bashrc");
    await writeFile(victim, "a file of the user running kiln test\n");
    const logs = join(scratch, "logs-swap");
    const bin = join(scratch, "swap-bin");
    await mkdir(bin);
    const real = execFileSync("sh", ["-c", "command -v qemu-system-x86_64"], { encoding: "utf8" }).trim();
    // Stands in for the other user, at the worst moment: just before QEMU starts.
    await writeFile(join(bin, "qemu-system-x86_64"), `#!/bin/sh
for log in "${logs}"/console-*.log; do rm -f "$log" && ln -s "${victim}" "$log"; done
exec "${real}" "$@"
`);
    await chmod(join(bin, "qemu-system-x86_64"), 0o755);
    const run = await runKiln(["test", image, "--firmware", "bios", "--boots", "1", "--log-dir", logs], { PATH: `${bin}:${process.env.PATH ?? ""}` });
    assert.equal(await readFile(victim, "utf8"), "a file of the user running kiln test\n", "QEMU wrote the guest's console into the symlink's target");
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /the firmware found nothing to boot on the disk/, "kiln still read the console QEMU wrote");
  });
});
