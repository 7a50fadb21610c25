import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CommandError } from "../system/command-error.js";
import { exec } from "../system/exec.js";
import type { Communicator, RunScriptOptions, UploadOptions } from "./communicator.js";

/** The environment provisioners see: nothing of the build host's own environment leaks in. */
const baseEnv = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  LANG: "C.UTF-8",
  DEBIAN_FRONTEND: "noninteractive",
};

/**
 * Sets up /proc, /sys and /dev inside the tree, then chroots. It runs as PID 1 of new mount,
 * PID, UTS and IPC namespaces, so the mounts exist only while the command runs and the kernel
 * removes them (and kills any daemon the command left behind) when it exits, even if kiln is
 * killed: no mount can leak onto the build host.
 */
const enterScript = [
  'root=$1; shift',
  'mkdir -p "$root/proc" "$root/sys" "$root/dev"',
  'mount -t proc proc "$root/proc"',
  'mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"',
  'mount --rbind /dev "$root/dev"',
  'mount --make-rslave "$root/dev"',
  'hostname kiln-build',
  'exec chroot "$root" "$@"',
].join(" && ");

/** Runs commands inside a root filesystem tree on this machine. */
export class ChrootCommunicator implements Communicator {
  readonly description = "chroot";

  constructor(readonly root: string) {}

  /** The argv that runs `command` inside the tree, in fresh namespaces. */
  commandLine(command: readonly string[]): string[] {
    return ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--uts", "--ipc", "--",
      "sh", "-c", enterScript, "kiln-enter", this.root, ...command];
  }

  async runScript(script: string, options: RunScriptOptions): Promise<void> {
    const name = `/tmp/kiln-script-${randomBytes(6).toString("hex")}`;
    const hostPath = join(this.root, name);
    await mkdir(join(this.root, "tmp"), { recursive: true, mode: 0o1777 });
    const body = script.startsWith("#!") ? script : `#!${options.interpreter ?? "/bin/sh -e"}\n${script}`;
    await writeFile(hostPath, body, { mode: 0o700 });
    try {
      const [file, ...args] = this.commandLine([name]);
      await exec(file as string, args, {
        what: options.what,
        display: "its script",
        signal: options.signal,
        env: { ...baseEnv, ...options.env },
        ...(options.onStdoutLine === undefined ? {} : { onStdoutLine: options.onStdoutLine }),
        ...(options.onStderrLine === undefined ? {} : { onStderrLine: options.onStderrLine }),
      });
    } finally {
      await rm(hostPath, { force: true });
    }
  }

  /**
   * Copies by streaming into a process inside the chroot, so the destination path (and any
   * symlink on the way) is resolved inside the image, never on the build host.
   */
  async upload(localPath: string, targetPath: string, options: UploadOptions): Promise<void> {
    const source = await stat(localPath);
    const isDirectory = source.isDirectory();
    const apply = [
      options.mode !== undefined ? 'chmod "$KILN_MODE" "$1"' : isDirectory ? ":" : 'chmod "$KILN_SOURCE_MODE" "$1"',
      options.owner !== undefined ? `chown ${isDirectory ? "-R " : ""}"$KILN_OWNER" "$1"` : ":",
    ].join(" && ");
    const receive = isDirectory
      ? `mkdir -p "$1" && tar -x --no-same-owner -C "$1" && ${apply}`
      : `mkdir -p "$(dirname "$1")" && cat > "$1" && ${apply}`;
    const [file, ...args] = this.commandLine(["/bin/sh", "-c", receive, "kiln-upload", targetPath]);
    const env = {
      ...baseEnv,
      KILN_SOURCE_MODE: (source.mode & 0o7777).toString(8),
      ...(options.mode === undefined ? {} : { KILN_MODE: options.mode }),
      ...(options.owner === undefined ? {} : { KILN_OWNER: options.owner }),
    };
    if (!isDirectory) {
      await exec(file as string, args, { what: options.what, display: `copying ${localPath} to ${targetPath}`, signal: options.signal, env, stdin: createReadStream(localPath) });
      return;
    }
    const tar = spawn("tar", ["-c", "-C", localPath, "."], { stdio: ["ignore", "pipe", "inherit"] });
    const tarDone = new Promise<number | null>((resolve) => tar.on("close", resolve));
    try {
      await exec(file as string, args, { what: options.what, display: `copying ${localPath} to ${targetPath}`, signal: options.signal, env, stdin: tar.stdout });
    } finally {
      tar.kill();
    }
    const code = await tarDone;
    if (code !== 0 && code !== null) throw new CommandError(options.what, `tar -c -C ${localPath} .`, code, null, []);
  }
}
