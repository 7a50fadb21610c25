import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:fs";
import { access, copyFile, open, rm, stat, symlink, type FileHandle } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { fileURLToPath } from "node:url";
import { KilnError } from "../errors.js";

export type Firmware = "bios" | "uefi";

/** UEFI firmware (OVMF) as distributions install it: code read-only, a private copy of the variables. */
const ovmfCandidates = [
  { code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.fd" },
  { code: "/usr/share/OVMF/OVMF_CODE.fd", vars: "/usr/share/OVMF/OVMF_VARS.fd" },
  { code: "/usr/share/edk2/ovmf/OVMF_CODE.fd", vars: "/usr/share/edk2/ovmf/OVMF_VARS.fd" },
  { code: "/usr/share/edk2/x64/OVMF_CODE.4m.fd", vars: "/usr/share/edk2/x64/OVMF_VARS.4m.fd" },
];

export async function findOvmf(): Promise<{ code: string; vars: string }> {
  for (const candidate of ovmfCandidates) {
    if (await stat(candidate.code).then((s) => s.isFile(), () => false) && await stat(candidate.vars).then((s) => s.isFile(), () => false)) return candidate;
  }
  throw new KilnError("KILN_TOOL_MISSING", `no UEFI firmware for QEMU (looked for ${ovmfCandidates.map((c) => c.code).join(", ")})`, { hint: "apt-get install ovmf, or test with --firmware bios", exitCode: 2 });
}

/** KVM when /dev/kvm can be opened; QEMU itself falls back to TCG when it cannot use it. */
async function accelerators(): Promise<string[]> {
  const kvm = await access("/dev/kvm", constants.R_OK | constants.W_OK).then(() => true, () => false);
  return kvm ? ["-accel", "kvm", "-accel", "tcg,thread=multi"] : ["-accel", "tcg,thread=multi"];
}

/** A loopback port nothing listens on now (QEMU is told it; a race with another program is retried by the caller). */
export async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => { server.once("error", reject); server.listen(0, "127.0.0.1", resolve); });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** QEMU reads `,` inside an option value as the next option unless it is doubled. */
function optionValue(text: string): string {
  return text.replace(/,/g, ",,");
}

export interface VmOptions {
  /** The overlay QEMU writes to; the image under test is its read-only backing file. */
  overlay: string;
  firmware: Firmware;
  sshPort: number;
  imdsPort: number;
  /** Where the serial console is written, and read from while the guest runs. */
  consoleLog: string;
  /** For the UEFI variables copy. */
  scratch: string;
  memoryMiB?: number;
  /** Leave QEMU running when kiln exits (`--keep`). */
  detached?: boolean;
}

export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** The IMDS bridge QEMU runs per guest connection to 169.254.169.254:80. */
const bridgeScript = join(dirname(fileURLToPath(import.meta.url)), "imds-bridge.js");

/**
 * The command QEMU runs for each guest connection to the metadata service (guestfwd cmd:).
 * libslirp runs it without a shell, split on spaces (4.7) or parsed as shell words (4.8), so
 * node and the bridge script are reached through links in the scratch directory: kiln's own
 * paths may hold spaces or quotes.
 */
export async function imdsBridgeCommand(scratch: string, port: number, node = process.execPath, script = bridgeScript): Promise<string> {
  if (/[\s'"\\$`]/.test(scratch)) {
    throw new KilnError("KILN_QEMU", `the temporary directory ${JSON.stringify(scratch)} has a space or quote, which QEMU's guestfwd command cannot carry`, { hint: "set TMPDIR to a path without spaces or quotes" });
  }
  const links = { node: join(scratch, "node"), script: join(scratch, "imds-bridge.js") };
  // A second boot from the same scratch directory makes them again.
  for (const [target, link] of [[node, links.node], [script, links.script]] as const) {
    await rm(link, { force: true });
    await symlink(target, link);
  }
  return `${links.node} ${links.script} ${port}`;
}

/**
 * One QEMU guest: q35, virtio disk and NIC, user-mode network on 169.254.169.0/24 (so
 * 169.254.169.254 is inside it and can be forwarded to the local metadata service), SSH
 * forwarded from a loopback port, serial console to a file, no reboot (a reboot or a panic
 * ends the run), no display. The network is restricted: user-mode networking otherwise hands
 * the guest's connections to the host's address (169.254.169.2) to this machine's 127.0.0.1,
 * and the image under test must not reach the services listening there.
 */
export class Vm {
  readonly exited: Promise<VmExit>;
  readonly accelerator: Promise<"kvm" | "tcg">;
  private stderr = "";

  /** The console log, open for reading what QEMU writes to it (see followFile). */
  readonly console: FileHandle;

  private constructor(private readonly child: ChildProcess, kvmAsked: boolean, console: FileHandle) {
    this.console = console;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal, stderr: this.stderr }));
      child.once("error", (error) => { this.stderr += `${error.message}\n`; resolve({ code: null, signal: null, stderr: this.stderr }); });
    });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => { this.stderr = (this.stderr + chunk).slice(-8192); });
    // QEMU says when it could not use KVM; after a moment without that, KVM it is.
    this.accelerator = !kvmAsked ? Promise.resolve("tcg") : new Promise((resolve) => {
      const decide = (): void => resolve(/falling back to tcg|failed to initialize kvm/i.test(this.stderr) ? "tcg" : "kvm");
      setTimeout(decide, 2000).unref();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(options: VmOptions): Promise<Vm> {
    const accel = await accelerators();
    const firmware: string[] = [];
    if (options.firmware === "uefi") {
      const ovmf = await findOvmf();
      const vars = join(options.scratch, `ovmf-vars-${Date.now()}.fd`);
      await copyFile(ovmf.vars, vars);
      firmware.push("-drive", `if=pflash,format=raw,readonly=on,file=${optionValue(ovmf.code)}`, "-drive", `if=pflash,format=raw,file=${optionValue(vars)}`);
    }
    const bridge = optionValue(await imdsBridgeCommand(options.scratch, options.imdsPort));
    // The console file is created here, private to this user (the guest prints its host keys to it),
    // and QEMU writes it through this descriptor (its fd 3), never by name: a name in a directory
    // another user can write could be swapped for a link to any file of this user.
    const consoleFile = await open(options.consoleLog, "wx+", 0o600).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
      throw new KilnError("KILN_USAGE", `the console log ${options.consoleLog} already exists`, { exitCode: 2, hint: "give --log-dir a directory of its own: an earlier run's console logs are not written over" });
    });
    const args = [
      // graphics=off: SeaBIOS prints on the serial port too, so "not a bootable disk" reaches the console log.
      "-machine", "q35,graphics=off", ...accel, "-cpu", "max", "-smp", "2", "-m", String(options.memoryMiB ?? 1024),
      "-display", "none", "-monitor", "none", "-no-reboot",
      "-chardev", "file,id=console,path=/proc/self/fd/3", "-serial", "chardev:console",
      ...firmware,
      "-drive", `file=${optionValue(options.overlay)},format=qcow2,if=virtio,cache=unsafe`,
      "-netdev", `user,id=net0,net=169.254.169.0/24,restrict=on,hostfwd=tcp:127.0.0.1:${options.sshPort}-:22,guestfwd=tcp:169.254.169.254:80-cmd:${bridge}`,
      "-device", "virtio-net-pci,netdev=net0",
    ];
    const child = spawn("qemu-system-x86_64", args, {
      stdio: ["ignore", "ignore", "pipe", consoleFile.fd],
      detached: options.detached === true,
    });
    return new Vm(child, accel.includes("kvm"), consoleFile);
  }

  /** Stops it at once (the overlay is thrown away anyway). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }

  /** Lets kiln exit while the guest runs on (`--keep`). */
  release(): void {
    this.child.stderr?.destroy();
    this.child.unref();
  }
}

/**
 * Follows a growing console file through a descriptor kiln holds: `onText` gets each new piece of
 * text, until `stop` is called (the caller closes the file). Reads every quarter second; the
 * guest's serial port is slower than that.
 */
export function followFile(handle: FileHandle, onText: (text: string) => void): { stop: () => Promise<void> } {
  let offset = 0;
  let stopped = false;
  const buffer = Buffer.alloc(65536);
  const decoder = new StringDecoder("utf8");
  const readNew = async (): Promise<void> => {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
      onText(decoder.write(buffer.subarray(0, bytesRead)));
    }
  };
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => { running = running.then(readNew); }, 250);
  return {
    stop: async () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await running;
      await readNew();
    },
  };
}
