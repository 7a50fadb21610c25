import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtemp, open, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ed25519OpenSshPrivateKey, ed25519PublicLine } from "../communicator/openssh-key.js";
import { SshCommunicator } from "../communicator/ssh-communicator.js";
import { CancelledError, KilnError } from "../errors.js";
import type { Reporter } from "../report/reporter.js";
import { exec } from "../system/exec.js";
import { findFilesystems } from "../image/partition-table.js";
import { bootFailure, ConsoleTail, plainConsole, printable, printedHostKeys, printedKeyLines, type PrintedHostKeys } from "./guest-console.js";
import { hostKeysFresh, onlyServedKeyAuthorized, passwordRefused, rootGrown, rootLocked, run, sshdKeyOnly, type CheckResult } from "./guest-checks.js";
import { ImdsServer, type InstanceIdentity } from "./imds-server.js";
import { followFile, freeLoopbackPort, Vm, type Firmware } from "./qemu.js";

export type { CheckResult } from "./guest-checks.js";

export interface VmTestOptions {
  image: string;
  firmware: readonly Firmware[];
  /** The account the launch key is for (the image's default user). */
  user: string;
  commands: readonly string[];
  /** Console logs go here (it exists, and is kiln's). */
  logDirectory: string;
  bootTimeoutSeconds: number;
  /** Leave the first boot running and print how to reach it. */
  keep: boolean;
  /** 2: boot again as another instance, which must get new host keys and only its own key. */
  boots: 1 | 2;
  signal: AbortSignal;
  report: Reporter;
}

export interface BootResult {
  firmware: Firmware;
  boot: number;
  instanceId: string;
  accelerator?: "kvm" | "tcg";
  secondsToConsole?: number;
  secondsToSsh?: number;
  consoleLog: string;
  checks: CheckResult[];
}

export interface VmTestResult {
  image: string;
  format: string;
  passed: boolean;
  boots: BootResult[];
  /** With --keep: how to reach the guest left running. */
  kept?: { ssh: string; stop: string; pid: number };
}

/** How much larger than the image the test's disk is: first boot must grow the root partition into it. */
const growthBytes = 1024 ** 3;
/** After the host keys are printed sshd starts within seconds (first boot runs before it). */
const sshWaitSeconds = 60;

/**
 * `kiln test`: boots a throw-away overlay of the image in QEMU, once per firmware, as an instance
 * would boot it: a local IMDSv2 service serves a fresh key pair and an instance id; the host keys
 * the guest prints on its console pin the SSH connection; the live system is checked as a user
 * meets it; then a second boot as another instance must change host keys and key.
 */
export async function testImage(options: VmTestOptions): Promise<VmTestResult> {
  const image = resolve(options.image);
  const info = await inspectImage(image, options.signal);
  const imds = await ImdsServer.start(identity(1));
  const boots: BootResult[] = [];
  let kept: VmTestResult["kept"];
  const total = options.firmware.length * (options.keep ? 1 : options.boots);
  try {
    for (const firmware of new Set(options.firmware)) {
      const scratch = await mkdtemp(join(tmpdir(), "kiln-test-"));
      let keepScratch = false;
      try {
        const overlay = join(scratch, "overlay.qcow2");
        await exec("qemu-img", ["create", "-q", "-f", "qcow2", "-F", info.format, "-b", image, overlay, String(info.virtualSize + growthBytes)], { what: "making the test's overlay disk (qemu-img create)", signal: options.signal });
        const first = await bootOnce({ ...options, firmware, overlay, scratch, imds, boot: 1, minimumRootBytes: info.virtualSize, index: boots.length + 1, total });
        boots.push(first.result);
        if (options.keep && first.vm !== undefined) {
          kept = await keepRunning(first.vm, first, scratch);
          keepScratch = true;
          break;
        }
        if (options.boots === 1 || !first.result.checks.every((c) => c.passed) || first.hostKeys === undefined) continue;
        const second = await bootOnce({ ...options, commands: [], firmware, overlay, scratch, imds, boot: 2, previous: first.hostKeys, minimumRootBytes: info.virtualSize, index: boots.length + 1, total });
        boots.push(second.result);
      } finally {
        if (!keepScratch) await rm(scratch, { recursive: true, force: true });
      }
    }
  } finally {
    await imds.close();
  }
  const passed = boots.length > 0 && boots.every((b) => b.checks.length > 0 && b.checks.every((c) => c.passed));
  return { image, format: info.format, passed, boots, ...(kept === undefined ? {} : { kept }) };
}

function identity(boot: number): InstanceIdentity & { privateKey: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const comment = `kiln-test-boot-${boot}`;
  return {
    instanceId: `i-${randomBytes(8).toString("hex").slice(0, 17)}`,
    publicKey: ed25519PublicLine(publicKey, comment),
    privateKey: ed25519OpenSshPrivateKey(privateKey, comment),
    hostname: `kiln-test-${boot}`,
  };
}

interface BootInput extends Omit<VmTestOptions, "firmware"> {
  firmware: Firmware;
  overlay: string;
  scratch: string;
  imds: ImdsServer;
  boot: number;
  minimumRootBytes: number;
  /** The first boot's host keys, which the second must not serve. */
  previous?: PrintedHostKeys;
  /** This boot's place in the run, for the progress line. */
  index: number;
  total: number;
}

interface BootOutcome {
  result: BootResult;
  hostKeys?: PrintedHostKeys;
  vm?: Vm;
  ssh?: { port: number; privateKey: string; user: string; keys: string[] };
}

async function bootOnce(input: BootInput): Promise<BootOutcome> {
  const { firmware, boot, report, signal } = input;
  const who = identity(boot);
  input.imds.become(who);
  const consoleLog = join(input.logDirectory, `console-${firmware}-${boot}.log`);
  const result: BootResult = { firmware, boot, instanceId: who.instanceId, consoleLog, checks: [] };
  const check = (c: CheckResult): void => {
    // Details quote what the guest printed: they reach this machine's terminal.
    c.detail = printable(c.detail);
    result.checks.push(c);
    report.info(`${c.passed ? "pass" : "FAIL"}: ${c.name}: ${c.detail}`);
  };
  const sshPort = await freeLoopbackPort();
  report.stepStarted(input.index, input.total, `${firmware} boot ${boot}`);
  report.info(`instance ${who.instanceId}, SSH on 127.0.0.1:${sshPort}, console in ${consoleLog}`);
  const started = Date.now();
  const vm = await Vm.start({ overlay: input.overlay, firmware, sshPort, imdsPort: input.imds.port, consoleLog, scratch: input.scratch, detached: input.keep });
  const consoleTail = new ConsoleTail();
  const follower = followFile(vm.console, (piece) => consoleTail.append(piece));
  let exited = false;
  void vm.exited.then(() => { exited = true; });
  let handedOver = false;
  try {
    result.accelerator = await vm.accelerator;
    // Until the host keys are on the console: or a failure there, or QEMU gone, or too long.
    const deadline = started + input.bootTimeoutSeconds * 1000;
    let keys: PrintedHostKeys | undefined;
    for (;;) {
      if (signal.aborted) throw new CancelledError();
      const text = consoleTail.text;
      if (result.secondsToConsole === undefined && consoleTail.kernelStarted) result.secondsToConsole = (Date.now() - started) / 1000;
      keys = printedHostKeys(text);
      if (keys !== undefined && keys.fingerprints.length > 0) break;
      const failure = bootFailure(text, consoleTail.kernelStarted);
      if (failure !== undefined) return fail(`the ${firmware} boot failed: ${failure}`);
      if (exited) return fail(`QEMU stopped before the guest printed its host keys: ${(await vm.exited).stderr.trim().split("\n").at(-1) ?? "(no message)"}`);
      if (/ login: /.test(plainConsole(text)) && Date.now() - started > 60_000 && !/kiln-first-boot|cloud-init/.test(text)) {
        return fail("the guest reached its login prompt but printed no host keys: the image has neither kiln's first-boot service nor cloud-init (harden: false?), so its host key cannot be pinned");
      }
      if (Date.now() > deadline) {
        return fail(`no host keys on the console within ${input.bootTimeoutSeconds}s${result.secondsToConsole === undefined ? " (the kernel never started: the disk's boot loader did not run)" : ""}`);
      }
      await sleep(250, undefined, { signal }).catch(() => undefined);
    }
    const agree = keys.listed.length > 0 && keys.listed.every((f) => keys.fingerprints.includes(f));
    check({ name: "host keys printed on the console", passed: agree, detail: agree ? keys.fingerprints.join(", ") : `the printed fingerprints (${keys.listed.join(", ") || "none"}) are not those of the printed keys (${keys.fingerprints.join(", ")})` });
    if (input.previous !== undefined) {
      const reused = keys.fingerprints.filter((f) => input.previous?.fingerprints.includes(f));
      check({ name: "host keys changed for the new instance", passed: reused.length === 0, detail: reused.length === 0 ? "none of the first boot's host keys is served" : `still served: ${reused.join(", ")}` });
    }
    let ssh: SshCommunicator;
    try {
      ssh = await SshCommunicator.connect({ host: "127.0.0.1", port: sshPort, username: input.user, privateKey: who.privateKey, pinned: keys.fingerprints, timeoutSeconds: sshWaitSeconds }, { signal, report });
    } catch (error) {
      if (!(error instanceof KilnError) || error.code !== "KILN_SSH_TIMEOUT") throw error;
      return fail(sshFailureCause(input.user, error.message, input.imds.keyServedOverV2()));
    }
    result.secondsToSsh = (Date.now() - started) / 1000;
    check({ name: `SSH login as ${input.user} with the served key, host key pinned`, passed: true, detail: `in ${result.secondsToSsh.toFixed(1)}s from power-on (console after ${result.secondsToConsole?.toFixed(1) ?? "?"}s)` });
    try {
      const v2 = input.imds.keyServedOverV2();
      const refusedV1 = input.imds.requests.filter((r) => !r.token && r.status === 401).length;
      check({ name: "the key came over IMDSv2 (IMDSv1 is refused)", passed: v2, detail: v2 ? `token PUT, then the key with the token${refusedV1 > 0 ? `; ${refusedV1} request(s) without a token were refused` : ""}` : "the key was never fetched with a token" });
      check(await onlyServedKeyAuthorized(ssh, who.publicKey, signal));
      check(await rootLocked(ssh, signal));
      check(await passwordRefused("127.0.0.1", sshPort, ["root", input.user], keys.fingerprints, signal));
      check(await sshdKeyOnly(ssh, input.user, signal));
      check(await hostKeysFresh(ssh, signal));
      check(await rootGrown(ssh, input.minimumRootBytes, signal));
      for (const command of input.commands) {
        const { code, out, err } = await run(ssh, command, signal);
        const said = (code === 0 ? out : err).at(-1) ?? out.at(-1) ?? "";
        check({ name: `test command: ${command.length > 60 ? `${command.slice(0, 57)}...` : command}`, passed: code === 0, detail: `exit ${code}${said === "" ? "" : `: ${said.slice(0, 200)}`}` });
      }
      if (input.keep) {
        ssh.close();
        handedOver = true;
        return { result, hostKeys: keys, vm, ssh: { port: sshPort, privateKey: who.privateKey, user: input.user, keys: printedKeyLines(consoleTail.text) } };
      }
      const stopping = Date.now();
      await run(ssh, "sudo -n systemctl poweroff || sudo -n poweroff", signal).catch(() => undefined);
      ssh.close();
      const stopped = await Promise.race([vm.exited, sleep(120_000, undefined, { signal }).then(() => undefined)]);
      const clean = stopped !== undefined && stopped.code === 0;
      check({ name: "powers off cleanly", passed: clean, detail: clean ? `in ${((Date.now() - stopping) / 1000).toFixed(1)}s` : stopped === undefined ? "still running 120s after poweroff" : `QEMU exited with ${stopped.code ?? stopped.signal}` });
    } finally {
      ssh.close();
    }
    return { result, hostKeys: keys };
  } finally {
    if (!handedOver) vm.kill();
    await follower.stop();
    await vm.console.close();
  }

  function fail(detail: string): BootOutcome {
    check({ name: "boots to a pinned SSH login", passed: false, detail });
    return { result };
  }
}

/**
 * Names why SSH did not come up, from how the last attempt failed: through QEMU's forwarding a
 * closed port 22 shows as a connection reset before the SSH banner, a refused key as an
 * authentication failure.
 */
function sshFailureCause(user: string, last: string, keyServed: boolean): string {
  if (/authentication methods failed/i.test(last)) {
    if (!keyServed) return `the guest never fetched its launch key from the metadata service over IMDSv2, so the key is refused (${last})`;
    return `sshd refused the served key for ${user}: is ${user} the image's default user (--user)? (${last})`;
  }
  return `sshd does not answer on port 22 in the guest: is ssh.service installed, enabled and starting? (see the console log; ${last})`;
}

async function keepRunning(vm: Vm, outcome: BootOutcome, scratch: string): Promise<VmTestResult["kept"]> {
  if (outcome.ssh === undefined) return undefined;
  const key = join(scratch, "id_ed25519");
  const knownHosts = join(scratch, "known_hosts");
  await writeFile(key, outcome.ssh.privateKey, { mode: 0o600, flag: "wx" });
  await writeFile(knownHosts, outcome.ssh.keys.map((k) => `[127.0.0.1]:${outcome.ssh?.port} ${k}\n`).join(""), { mode: 0o600, flag: "wx" });
  vm.release();
  const pid = vm.pid ?? 0;
  return {
    ssh: `ssh -i ${key} -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -p ${outcome.ssh.port} ${outcome.ssh.user}@127.0.0.1`,
    stop: `kill ${pid} && rm -r ${scratch}`,
    pid,
  };
}

/** A disk whose filesystems are NTFS and none is Linux's: kiln test has no Windows guest to check yet. */
async function refuseWindows(image: string, size: number): Promise<void> {
  const handle = await open(image, "r");
  try {
    const volumes = await findFilesystems(handle, size, image).catch(() => []);
    if (volumes.some((v) => v.filesystem === "ntfs") && !volumes.some((v) => v.filesystem === "ext")) {
      throw new KilnError("KILN_USAGE", `${image} is a Windows disk (NTFS, no Linux filesystem): kiln test boots Linux images only for now`, { exitCode: 2, hint: "test Windows images on EC2 (an amazon-ebs build connects to them over OpenSSH)" });
    }
  } finally {
    await handle.close();
  }
}

interface ImageInfo {
  format: string;
  virtualSize: number;
}

const testableFormats = new Set(["raw", "qcow2", "vmdk", "vhdx", "vpc"]);

/**
 * What qemu-img makes of the image, refusing what would let the guest read this machine's
 * files: a backing file, vmdk extents that are other files (a descriptor can name any path), or
 * a qcow2's external data file.
 */
export async function inspectImage(image: string, signal: AbortSignal): Promise<ImageInfo> {
  const file = await stat(image).catch(() => undefined);
  if (file === undefined || !file.isFile()) {
    throw new KilnError("KILN_USAGE", `${image} ${file === undefined ? "does not exist" : "is not a file"}`, { exitCode: 2, hint: "give kiln test a disk image file: disk.raw, disk.qcow2, … from a build's output directory" });
  }
  // A fixed VHD (Azure's) is the disk and a footer; qemu-img probes only the start, so it is named.
  const fixedVhd = await hasFixedVhdFooter(image, file.size);
  const { stdout } = await exec("qemu-img", ["info", "--output=json", ...(fixedVhd ? ["-f", "vpc"] : []), image], { what: `reading ${image} (qemu-img info)`, signal, hint: "give kiln test a disk image: raw, qcow2, vmdk, vhdx or vhd" });
  const info = JSON.parse(stdout) as { format?: string; "virtual-size"?: number; "backing-filename"?: string; "format-specific"?: { data?: { extents?: { filename?: string }[]; "data-file"?: string } } };
  const format = info.format ?? "unknown";
  if (!testableFormats.has(format)) {
    throw new KilnError("KILN_USAGE", `${image} is a ${format} image; kiln test boots raw, qcow2, vmdk, vhdx and vhd disks`, { exitCode: 2, hint: "convert it with qemu-img convert -O qcow2" });
  }
  if (info["backing-filename"] !== undefined) {
    throw new KilnError("KILN_USAGE", `${image} is a ${format} overlay of another file (${info["backing-filename"]}): kiln test does not follow backing files, which can name any file on this machine`, { exitCode: 2, hint: "flatten it first: qemu-img convert -O qcow2 IMAGE FLAT.qcow2" });
  }
  const extents = (info["format-specific"]?.data?.extents ?? []).map((e) => e.filename).filter((f): f is string => f !== undefined && resolve(f) !== image);
  if (extents.length > 0) {
    throw new KilnError("KILN_USAGE", `${image} is a vmdk whose data is in other files (${extents.join(", ")}): kiln test boots self-contained disks only`, { exitCode: 2, hint: "convert it to one file: qemu-img convert -O vmdk -o subformat=streamOptimized" });
  }
  // A qcow2's external data file holds its clusters: with data-file-raw, any file or device as the disk.
  const dataFile = info["format-specific"]?.data?.["data-file"];
  if (dataFile !== undefined) {
    throw new KilnError("KILN_USAGE", `${image} is a ${format} whose data is in another file (${dataFile}): kiln test boots self-contained disks only`, { exitCode: 2, hint: "convert it to one file: qemu-img convert -O qcow2 IMAGE FLAT.qcow2" });
  }
  const virtualSize = info["virtual-size"] ?? 0;
  if (format === "raw" || format === "vpc") await refuseWindows(image, file.size);
  return { format, virtualSize };
}

/**
 * Whether the file ends with a fixed VHD's footer: "conectix" and disk type 2 (fixed) in its
 * last 512 bytes (Microsoft's VHD specification). A dynamic VHD starts with a copy of it, which
 * qemu-img recognises itself.
 */
async function hasFixedVhdFooter(image: string, size: number): Promise<boolean> {
  if (size < 1024) return false;
  const handle = await open(image, "r");
  try {
    const footer = Buffer.alloc(512);
    await handle.read(footer, 0, 512, size - 512);
    return footer.toString("latin1", 0, 8) === "conectix" && footer.readUInt32BE(60) === 2;
  } finally {
    await handle.close();
  }
}
