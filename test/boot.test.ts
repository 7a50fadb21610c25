import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readSync, statSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sha256File } from "../src/system/sha256.js";
import type { VmTestResult } from "../src/vm-test/run-test.js";
import { repoRoot, runKiln } from "./helpers/kiln-process.js";

/**
 * The example template as the README builds it: a GPT disk that boots by BIOS and UEFI, then
 * booted for real in QEMU (TCG here) by `kiln test`, which logs in over SSH with the host key the
 * guest printed pinned. Broken copies of the disk must fail the test with their cause named.
 */
const cacheDir = process.env.KILN_TEST_CACHE_DIR ?? "/var/tmp/kiln-test-cache";
const example = join(repoRoot, "examples/debian-local.yaml");
const scratch = mkdtempSync(join(tmpdir(), "kiln-boot-e2e-"));
after(() => rm(scratch, { recursive: true, force: true }));

const mib = 1024 * 1024;

/** The example with every output format, beside it so its relative file paths resolve. */
async function allFormats(): Promise<string> {
  const text = (await readFile(example, "utf8")).replace("formats: [raw, qcow2]", "formats: [raw, qcow2, vmdk, vhdx, vhd]");
  assert.match(text, /formats: \[raw, qcow2, vmdk, vhdx, vhd\]/);
  const file = join(repoRoot, "examples", ".boot-e2e.generated.yaml");
  await writeFile(file, text);
  after(() => rm(file, { force: true }));
  return file;
}

async function build(template: string, name: string): Promise<string> {
  const output = join(scratch, name);
  const run = await runKiln(["build", template, "--cache-dir", cacheDir, "--work-dir", join(scratch, `${name}-work`), "--output-dir", output]);
  assert.equal(run.code, 0, `build failed:\n${run.stdout}\n${run.stderr}`);
  const [only] = await readdir(output);
  return join(output, only ?? "");
}

async function kilnTest(image: string, ...args: string[]): Promise<{ code: number | null; result: VmTestResult; stderr: string }> {
  const run = await runKiln(["test", image, "--json", "--log-dir", join(scratch, `logs-${Math.random().toString(36).slice(2)}`), ...args]);
  return { code: run.code, result: JSON.parse(run.stdout) as VmTestResult, stderr: run.stderr };
}

function failedChecks(result: VmTestResult): string {
  return result.boots.flatMap((b) => b.checks.filter((c) => !c.passed).map((c) => `${b.firmware} ${b.boot}: ${c.name}: ${c.detail}`)).join("\n");
}

/** A sparse copy of the disk with debugfs commands applied to its root filesystem (partition 3). */
async function brokenCopy(disk: string, name: string, commands: string[], rootOffset: number): Promise<string> {
  const copy = join(scratch, `${name}.raw`);
  execFileSync("cp", ["--sparse=always", disk, copy]);
  const script = join(scratch, `${name}.debugfs`);
  await writeFile(script, `${commands.join("\n")}\n`);
  execFileSync("debugfs", ["-w", "-f", script, `${copy}?offset=${rootOffset}`], { stdio: "pipe" });
  return copy;
}

describe("a bootable disk, booted by kiln test (QEMU, a local IMDSv2 service, a pinned host key)", { timeout: 40 * 60_000 }, () => {
  let out: string;
  let manifest: { disk: { partitions: string; boot: string[]; layout: { name: string; offset: number; bytes: number; guid: string }[] }; login: { user: string }; tools: Record<string, string> };

  before(async () => {
    out = await build(await allFormats(), "first");
    manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as typeof manifest;
  });

  it("writes a GPT disk with BIOS boot, EFI system and root partitions, in whole MiB", async () => {
    assert.equal(manifest.disk.partitions, "gpt");
    assert.deepEqual(manifest.disk.boot, ["bios", "uefi"]);
    assert.deepEqual(manifest.disk.layout.map((p) => p.name), ["bios-boot", "esp", "root"]);
    assert.equal(manifest.login.user, "admin");
    // The versions of every tool that decides the disk's bytes.
    assert.deepEqual(Object.keys(manifest.tools).sort(), ["grub", "mke2fs", "mkfs.fat", "mmdebstrap", "mtools", "qemu-img", "sfdisk"]);
    for (const [tool, version] of Object.entries(manifest.tools)) assert.match(version, /^\d+\.\d+/, tool);
    const table = JSON.parse(execFileSync("sfdisk", ["--json", join(out, "disk.raw")], { encoding: "utf8" })) as { partitiontable: { label: string; partitions: { start: number; size: number; uuid: string }[] } };
    assert.equal(table.partitiontable.label, "gpt");
    assert.deepEqual(table.partitiontable.partitions.map((p) => [p.start * 512, p.size * 512, p.uuid]), manifest.disk.layout.map((p) => [p.offset, p.bytes, p.guid]));
    // The ESP holds GRUB at the removable-media path, read without mounting (mtools).
    const esp = manifest.disk.layout[1];
    const listing = execFileSync("mdir", ["-b", "-i", `${join(out, "disk.raw")}@@${esp?.offset ?? 0}`, "::/EFI/BOOT"], { encoding: "utf8", env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } });
    assert.match(listing, /BOOTX64\.EFI/);
    const fstab = execFileSync("debugfs", ["-R", "cat /etc/fstab", `${join(out, "disk.raw")}?offset=${manifest.disk.layout[2]?.offset ?? 0}`], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    assert.match(fstab, /^UUID=[0-9a-f-]{36} \/ ext4 /m);
  });

  it("converts to every format with the same disk inside, vmdk as streamOptimized and vhd fixed in whole MiB", () => {
    const raw = join(out, "disk.raw");
    for (const [format, qemu] of [["qcow2", "qcow2"], ["vmdk", "vmdk"], ["vhdx", "vhdx"], ["vhd", "vpc"]] as const) {
      const compare = spawnSync("qemu-img", ["compare", "-f", "raw", "-F", qemu, raw, join(out, `disk.${format}`)], { encoding: "utf8" });
      assert.equal(compare.status, 0, `${format}: ${compare.stdout}${compare.stderr}`);
    }
    const vmdk = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", join(out, "disk.vmdk")], { encoding: "utf8" })) as { "format-specific": { data: { "create-type": string } } };
    assert.equal(vmdk["format-specific"].data["create-type"], "streamOptimized");
    // The VHD footer (Microsoft's VHD specification): the last 512 bytes, a fixed disk whose size is the raw disk's, in whole MiB.
    const rawSize = statSync(raw).size;
    const vhdSize = statSync(join(out, "disk.vhd")).size;
    const footer = Buffer.alloc(512);
    const fd = openSync(join(out, "disk.vhd"), "r");
    readSync(fd, footer, 0, 512, vhdSize - 512);
    closeSync(fd);
    assert.equal(footer.toString("latin1", 0, 8), "conectix");
    assert.equal(footer.readUInt32BE(60), 2, "disk type 2: fixed");
    assert.equal(Number(footer.readBigUInt64BE(48)), rawSize, "current size: the raw size, kept exactly (force_size)");
    assert.equal(vhdSize, rawSize + 512, "the data, then the footer");
    assert.equal(rawSize % mib, 0, "Azure takes whole MiB only");
    // qemu-img's probe reads a fixed VHD as raw unless told (-f vpc): told, it sees the raw disk's size.
    const vhdInfo = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", "-f", "vpc", join(out, "disk.vhd")], { encoding: "utf8" })) as { "virtual-size": number };
    assert.equal(vhdInfo["virtual-size"], rawSize);
  });

  it("is byte-identical when built again from the same inputs", async () => {
    const again = await build(await allFormats(), "again");
    // vhdx is left out: qemu-img gives it random GUIDs and sequence numbers under CRC-32C checksums.
    for (const file of ["disk.raw", "disk.qcow2", "disk.vmdk", "disk.vhd"]) {
      assert.equal(await sha256File(join(again, file)), await sha256File(join(out, file)), file);
    }
  });

  // One boot pair carries the loopback probe too: each QEMU boot under TCG is a minute of CI.
  it("boots by BIOS, twice: pinned SSH login, key-only and locked, then new host keys and key for another instance; the guest cannot reach this machine's loopback services", async () => {
    const connections: string[] = [];
    const service = createServer((socket) => { connections.push(String(socket.remotePort)); socket.end("a loopback-only service\n"); });
    await new Promise<void>((resolve) => service.listen(0, "127.0.0.1", resolve));
    after(() => new Promise((resolve) => service.close(resolve)));
    const { port } = service.address() as AddressInfo;
    // Exits 0 only when the guest cannot connect to the host's address at that port (nor its gateway's):
    // user-mode networking would otherwise map the host's address to 127.0.0.1.
    const probe = `! timeout 20 bash -c 'exec 3<>/dev/tcp/169.254.169.2/${port}' && ! timeout 20 bash -c 'exec 3<>/dev/tcp/169.254.169.1/${port}'`;
    const { code, result, stderr } = await kilnTest(join(out, "disk.raw"), "--firmware", "bios", "--command", "cat /etc/kiln-release", "--command", probe);
    assert.equal(code, 0, `${failedChecks(result)}\n${stderr}`);
    assert.deepEqual(connections, [], "the guest reached a service on this machine's 127.0.0.1");
    assert.deepEqual(result.boots.map((b) => [b.firmware, b.boot]), [["bios", 1], ["bios", 2]]);
    const names = result.boots[0]?.checks.map((c) => c.name) ?? [];
    for (const check of ["host keys printed on the console", "SSH login as admin with the served key, host key pinned", "the key came over IMDSv2 (IMDSv1 is refused)",
      "only the served key is authorized", "root's password is locked", "password login is refused", "sshd's effective configuration is key-only",
      "the host keys were made at this boot", "the root filesystem grew into the larger disk", "test command: cat /etc/kiln-release", "powers off cleanly"]) {
      assert.ok(names.includes(check), `${check} in ${names.join(", ")}`);
    }
    assert.ok(result.boots[1]?.checks.some((c) => c.name === "host keys changed for the new instance" && c.passed));
    assert.ok(result.boots.every((b) => b.secondsToSsh !== undefined && b.secondsToConsole !== undefined));
    const log = await readFile(result.boots[0]?.consoleLog ?? "", "utf8");
    assert.match(log, /Linux version/);
    assert.match(log, /-----BEGIN SSH HOST KEY FINGERPRINTS-----/);
  });

  it("boots by UEFI from the qcow2 as converted", async () => {
    const { code, result, stderr } = await kilnTest(join(out, "disk.qcow2"), "--firmware", "uefi", "--boots", "1");
    assert.equal(code, 0, `${failedChecks(result)}\n${stderr}`);
    assert.equal(result.format, "qcow2");
    assert.deepEqual(result.boots.map((b) => [b.firmware, b.boot]), [["uefi", 1]]);
  });

  it("fails, naming the cause, on a disk without a kernel", async () => {
    const root = manifest.disk.layout[2]?.offset ?? 0;
    const broken = await brokenCopy(join(out, "disk.raw"), "no-kernel", ["rm /vmlinuz", "rm /vmlinuz.old"], root);
    const { code, result } = await kilnTest(broken, "--firmware", "bios", "--boots", "1");
    assert.equal(code, 1);
    assert.match(failedChecks(result), /the bios boot failed: GRUB could not load the kernel: the console says "error: file `\/vmlinuz' not found/);
  });

  it("fails, naming the cause, on a disk whose sshd is disabled", async () => {
    const root = manifest.disk.layout[2]?.offset ?? 0;
    const broken = await brokenCopy(join(out, "disk.raw"), "no-sshd", ["rm /etc/systemd/system/multi-user.target.wants/ssh.service", "rm /etc/systemd/system/sshd.service"], root);
    const { code, result } = await kilnTest(broken, "--firmware", "bios", "--boots", "1");
    assert.equal(code, 1);
    assert.match(failedChecks(result), /sshd does not answer on port 22 in the guest: is ssh\.service installed, enabled and starting\?/);
  });

  it("refuses a Windows disk, a missing file and a directory, each with one line naming it", async () => {
    const windows = join(scratch, "windows.raw");
    const sector = Buffer.alloc(512);
    sector.write("NTFS    ", 3, "latin1");
    sector.writeUInt16LE(0xaa55, 510);
    await writeFile(windows, Buffer.concat([sector, Buffer.alloc(8 * mib - 512)]));
    for (const [image, message] of [[windows, /is a Windows disk \(NTFS, no Linux filesystem\): kiln test boots Linux images only for now/], [join(scratch, "missing.raw"), /missing\.raw does not exist/], [scratch, /is not a file/]] as const) {
      const run = await runKiln(["test", image, "--log-dir", join(scratch, `refused-${Math.random().toString(36).slice(2)}`)]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
    }
  });

  it("fails the key checks of a disk whose sshd takes another key through a Match block, and trusts other hosts", async () => {
    const root = manifest.disk.layout[2]?.offset ?? 0;
    const config = execFileSync("debugfs", ["-R", "cat /etc/ssh/sshd_config", `${join(out, "disk.raw")}?offset=${root}`], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const dir = join(scratch, "match-block");
    execFileSync("mkdir", ["-p", dir]);
    await writeFile(join(dir, "sshd_config"), `${config}\nHostbasedAuthentication yes\nMatch User admin\n\tAuthorizedKeysFile .ssh/authorized_keys /etc/ssh/admin_keys\n`, { mode: 0o644 });
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "a-forgotten-key", "-f", join(dir, "key")]);
    execFileSync("cp", [join(dir, "key.pub"), join(dir, "admin_keys")]);
    execFileSync("chmod", ["644", join(dir, "admin_keys"), join(dir, "sshd_config")]);
    const broken = await brokenCopy(join(out, "disk.raw"), "match-block", ["cd /etc/ssh", "rm sshd_config", `write ${join(dir, "sshd_config")} sshd_config`, `write ${join(dir, "admin_keys")} admin_keys`], root);
    const { code, result } = await kilnTest(broken, "--firmware", "bios", "--boots", "1", "--user", "admin");
    assert.equal(code, 1);
    const failed = failedChecks(result);
    assert.match(failed, /only the served key is authorized: 1 other key authorized: \/etc\/ssh\/admin_keys \(ssh-ed25519/);
    assert.match(failed, /sshd's effective configuration is key-only: .*hostbasedauthentication yes for root/);
  });

  it("refuses an image that is an overlay of another file: its backing file could be any file here", async () => {
    const overlay = join(scratch, "overlay.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/shadow", overlay, "1G"]);
    const run = await runKiln(["test", overlay, "--log-dir", join(scratch, "refused")]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /is a qcow2 overlay of another file \(\/etc\/shadow\)/);
  });
});
