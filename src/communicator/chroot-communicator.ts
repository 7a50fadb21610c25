import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname } from "node:path";
import type { Readable } from "node:stream";
import { CommandError } from "../system/command-error.js";
import { exec } from "../system/exec.js";
import type { Communicator, RunScriptOptions, UploadOptions } from "./communicator.js";
import { receiveTree } from "./download.js";
import { fillExecuteCommand } from "./execute-command.js";

/** The environment provisioners see: nothing of the build host's own environment leaks in. */
const baseEnv = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  LANG: "C.UTF-8",
  DEBIAN_FRONTEND: "noninteractive",
};

/**
 * Prepares the tree and chroots. It runs as PID 1 of new mount, PID, UTS and IPC namespaces,
 * so the mounts exist only while the command runs and the kernel removes them (and kills any
 * daemon the command left behind) when it exits, even if kiln is killed: no mount can leak
 * onto the build host. /dev is a fresh tmpfs with only the harmless devices (no host disks),
 * /proc/sys is read-only (no host sysctl changes). In a user namespace (rootless builds)
 * sysfs cannot be mounted afresh, so the host's is bound instead.
 */
const enterScript = `set -e
root=$1; shift
mkdir -p "$root/proc" "$root/sys" "$root/dev"
mount -t proc proc "$root/proc"
mount --bind "$root/proc/sys" "$root/proc/sys"
mount -o remount,bind,ro "$root/proc/sys"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys" 2>/dev/null || { mount --rbind /sys "$root/sys"; mount --make-rslave "$root/sys"; }
mount -t tmpfs -o mode=755,nosuid,size=16m tmpfs "$root/dev"
for d in null zero full random urandom tty; do : > "$root/dev/$d"; mount --bind "/dev/$d" "$root/dev/$d"; done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
hostname kiln-build
exec chroot "$root" "$@"`;

/**
 * Runs inside the chroot: stores the script from stdin in the image's /tmp (so every path is
 * resolved inside the image, never on the host), sets the provisioner's variables (passed as
 * KILN_ENV_<name> so they never steer the host-side tools), and runs it.
 */
const runnerScript = `set -e
[ -d /tmp ] || { mkdir -p /tmp; chmod 1777 /tmp; }
script=$KILN_SCRIPT_PATH
execute=\${KILN_EXECUTE:-}
unset KILN_SCRIPT_PATH KILN_EXECUTE
(umask 077; set -C; : > "$script")
cat > "$script"
chmod 700 "$script"
for name in $KILN_ENV_NAMES; do eval "export $name=\\"\\$KILN_ENV_$name\\""; unset "KILN_ENV_$name"; done
unset KILN_ENV_NAMES
set +e
if [ -n "$execute" ]; then sh -c "$execute"; else "$script"; fi
status=$?
rm -f "$script"
exit $status`;

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
    const body = script.startsWith("#!") ? script : `#!${options.interpreter ?? "/bin/sh -e"}\n${script}`;
    const userEnv = options.env ?? {};
    // The path is chosen here so execute_command can name it; noclobber refuses a planted file.
    const path = `/tmp/kiln-script-${randomBytes(8).toString("hex")}`;
    const env: NodeJS.ProcessEnv = {
      ...baseEnv, KILN_ENV_NAMES: Object.keys(userEnv).join(" "), KILN_SCRIPT_PATH: path,
      // The variables are already in the environment of whatever execute_command runs, so
      // {{ .Vars }} is empty here and {{ .EnvVarFile }} an empty file: no value on a command line.
      ...(options.executeCommand === undefined ? {} : { KILN_EXECUTE: fillExecuteCommand(options.executeCommand, { path, vars: "", envFile: "/dev/null" }) }),
    };
    for (const [name, value] of Object.entries(userEnv)) env[`KILN_ENV_${name}`] = value;
    await this.inside(["/bin/sh", "-c", runnerScript, "kiln-run"], {
      what: options.what,
      display: "its script",
      signal: options.signal,
      env,
      stdin: body,
      ...(options.onStdoutLine === undefined ? {} : { onStdoutLine: options.onStdoutLine }),
      ...(options.onStderrLine === undefined ? {} : { onStderrLine: options.onStderrLine }),
    });
  }

  /**
   * Copies by streaming into a process inside the chroot, so the destination path (and any
   * symlink on the way) is resolved inside the image, never on the build host. A destination
   * ending in `/` is a directory to copy into.
   */
  async upload(localPath: string, targetPath: string, options: UploadOptions): Promise<void> {
    const source = await stat(localPath);
    const isDirectory = source.isDirectory();
    const target = targetPath.endsWith("/") ? `${targetPath}${basename(localPath)}` : targetPath;
    const apply = [
      options.mode !== undefined ? 'chmod "$KILN_MODE" "$1"' : isDirectory ? ":" : 'chmod "$KILN_SOURCE_MODE" "$1"',
      options.owner !== undefined ? `chown ${isDirectory ? "-R " : ""}"$KILN_OWNER" "$1"` : ":",
    ].join(" && ");
    const receive = isDirectory
      ? `set -e; mkdir -p "$1"; tar -x --no-same-owner -C "$1"; ${apply}`
      : `set -e; mkdir -p "$(dirname "$1")"; rm -f "$1"; cat > "$1"; ${apply}`;
    const env = {
      ...baseEnv,
      KILN_SOURCE_MODE: (source.mode & 0o7777).toString(8),
      ...(options.mode === undefined ? {} : { KILN_MODE: options.mode }),
      ...(options.owner === undefined ? {} : { KILN_OWNER: options.owner }),
    };
    const run = { what: options.what, display: `copying ${localPath} to ${target}`, signal: options.signal, env };
    if (!isDirectory) {
      await this.inside(["/bin/sh", "-c", receive, "kiln-upload", target], { ...run, stdin: createReadStream(localPath) });
      return;
    }
    const tar = spawn("tar", ["-c", "-C", localPath, "."], { stdio: ["ignore", "pipe", "pipe"] });
    const tarDone = new Promise<number | null>((resolve) => tar.on("close", resolve));
    try {
      await this.inside(["/bin/sh", "-c", receive, "kiln-upload", target], { ...run, stdin: tar.stdout });
    } finally {
      tar.kill();
    }
    const code = await tarDone;
    if (code !== 0 && code !== null) throw new CommandError(options.what, `tar -c -C ${localPath} .`, code, null, []);
  }

  /** Copies out by streaming a tar made inside the chroot, so the path resolves inside the image. */
  async download(targetPath: string, localPath: string, options: { what: string; signal: AbortSignal }): Promise<void> {
    const name = basename(targetPath);
    await receiveTree(name, localPath, options.what, (tarInput) => this.inside(["tar", "-C", dirname(targetPath), "-cf", "-", name], {
      what: options.what, display: `copying ${targetPath} out of the image`, signal: options.signal, env: baseEnv, stdout: tarInput,
    }));
  }

  private async inside(command: readonly string[], options: Parameters<typeof exec>[2] & { stdin?: Readable | string }): Promise<void> {
    const [file, ...args] = this.commandLine(command);
    await exec(file as string, args, options);
  }
}
