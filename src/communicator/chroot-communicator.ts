import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { KilnError } from "../errors.js";
import { CommandError } from "../system/command-error.js";
import { exec } from "../system/exec.js";
import type { ForeignTreeOwner } from "../system/tree-owner.js";
import type { Communicator, DownloadOptions, RunScriptOptions, UploadOptions } from "./communicator.js";
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
 * The capabilities root inside the tree keeps (Docker's default set): enough for package
 * installs (owners, modes, setuid bits, file capabilities, chroot), none to load modules, trace
 * processes, change the clock, mount, or reach raw devices and the kernel's audit or BPF.
 */
const keptCapabilities = ["chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap", "net_bind_service", "net_raw", "sys_chroot", "mknod", "audit_write", "setfcap"];
const boundingSet = ["-all", ...keptCapabilities.map((c) => `+${c}`)].join(",");

/** keyctl(2)'s system call number on each architecture Node runs on (from the kernel's syscall tables). */
export const keyctlSyscall: Partial<Record<string, number>> = { x64: 250, arm64: 219, riscv64: 219, loong64: 219, ia32: 288, arm: 311, ppc64: 271, s390x: 280 };

/**
 * A perl program that joins a new, empty session keyring and runs its arguments. A process
 * possesses every key its session keyring holds, whatever its uid: without this a provisioner
 * read and changed kiln's (a login's Kerberos cache, a token kept with keyctl). perl-base is
 * Essential on Debian and Ubuntu (mmdebstrap is written in it); util-linux has no keyring option.
 */
function ownSessionKeyring(): string {
  const keyctl = keyctlSyscall[process.arch];
  if (keyctl === undefined) throw new KilnError("KILN_SYSTEM", `kiln does not know keyctl's system call number on ${process.arch}, so it cannot give provisioners a keyring of their own`);
  // KEYCTL_JOIN_SESSION_KEYRING (1) with no name: a new anonymous keyring.
  // Then every descriptor but stdio is closed: kiln may have inherited some (a CI runner's, a
  // shell's) that are not close-on-exec, and a provisioner must hold nothing of the host's.
  const closeInherited = 'opendir(my $d, "/proc/self/fd") or die "kiln: /proc/self/fd: $!\\n"; my @fds = grep { /^\\d+$/ && $_ > 2 } readdir $d; closedir $d; require POSIX; POSIX::close($_) for @fds;';
  return `syscall(${keyctl}, 1, 0) >= 0 or die "kiln: cannot give the provisioner a session keyring of its own: $!\\n"; ${closeInherited} exec { $ARGV[0] } @ARGV or die "kiln: $ARGV[0]: $!\\n"`;
}

/**
 * Prepares the tree and enters it. It runs as PID 1 of new mount, PID, UTS and IPC namespaces,
 * so the mounts exist only while the command runs and the kernel removes them (and kills every
 * process the command left behind) when it exits; kiln's death kills it too (pdeathsig).
 * /dev is a fresh tmpfs with only the harmless devices (no host disks), /proc/sys is read-only.
 *
 * The command then runs in a jail, not merely a chroot: the mount namespace's root is pivoted
 * to a small tmpfs holding the tree, the host's /usr (read-only, for the tools that enter the
 * tree) and a /proc of this PID namespace, and the host's root is unmounted. A double-chroot
 * escape lands in that tmpfs, never on the host's files. Entering, kiln drops to root of a user
 * namespace that maps the tree's ids (when kiln runs as real root: see tree-owner.ts), sets
 * no_new_privs and bounds the capabilities, then chroots.
 */
const enterScript = `set -e
root=$1; jail=$2; base=$3; count=$4; idmap=$5; shift 5
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
mkdir -p "$jail"
mount -t tmpfs -o mode=755,nodev,size=1m kiln-jail "$jail"
mkdir "$jail/tree" "$jail/usr" "$jail/proc" "$jail/old" "$jail/kiln"
mount --rbind "$root" "$jail/tree"
mount --rbind /usr "$jail/usr"
mount -o remount,bind,ro "$jail/usr"
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$jail/$d"
  elif [ -d "/$d" ]; then mkdir "$jail/$d"; mount --rbind "/$d" "$jail/$d"; mount -o remount,bind,ro "$jail/$d"
  fi
done
mount -t proc proc "$jail/proc"
if [ -n "$base" ]; then cp "$idmap/newuidmap" "$idmap/newgidmap" "$jail/kiln/"; fi
cd "$jail"
pivot_root . old
umount -l /old
rmdir /old
cd /
enter="setpriv --pdeathsig KILL --nnp --inh-caps=-all --bounding-set=${boundingSet} -- chroot /tree"
if [ -z "$base" ]; then exec $enter "$@"; fi
kiln_path=$PATH
PATH=/kiln:$PATH exec unshare --user --map-users="$base,0,$count" --map-groups="$base,0,$count" --setuid 0 --setgid 0 -- env PATH="$kiln_path" $enter "$@"`;

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

  /** `owner`: the tree's ids as stored on the host (kiln as real root), or undefined when kiln is rootless. */
  constructor(readonly root: string, readonly owner?: ForeignTreeOwner) {}

  /** The argv that runs `command` inside the tree, in fresh namespaces; it dies with kiln. */
  commandLine(command: readonly string[]): string[] {
    const { owner } = this;
    const ids = owner === undefined ? ["", "", ""] : [String(owner.base), String(owner.count), owner.idmap];
    return ["setpriv", "--pdeathsig", "KILL", "--", "perl", "-e", ownSessionKeyring(), "unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--uts", "--ipc", "--",
      "sh", "-c", enterScript, "kiln-enter", this.root, join(dirname(this.root), "jail"), ...ids, ...command];
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
    // A fifo would wait for a writer forever, a device would stream without end.
    if (!isDirectory && !source.isFile()) {
      throw new KilnError("KILN_UPLOAD_REFUSED", `${options.what}: ${localPath} is not a regular file or a directory`, { hint: "upload a regular file or a directory" });
    }
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

  /**
   * Copies out by streaming a tar made inside the chroot, so the path (a link included: what it
   * points to comes down) resolves inside the image; kiln unpacks the stream as data.
   */
  async download(targetPath: string, localPath: string, options: DownloadOptions): Promise<void> {
    const send = 'set -e; source=$(realpath -e -- "$1"); cd "$(dirname -- "$source")"; exec tar -cf - "./$(basename -- "$source")"';
    await receiveTree(basename(targetPath), localPath, options.what, (tarInput) => this.inside(["/bin/sh", "-c", send, "kiln-download", targetPath], {
      what: options.what, display: `copying ${targetPath} out of the image`, signal: options.signal, env: baseEnv, stdout: tarInput,
    }), options.onSkipped);
  }

  private async inside(command: readonly string[], options: Parameters<typeof exec>[2] & { stdin?: Readable | string }): Promise<void> {
    const [file, ...args] = this.commandLine(command);
    await exec(file as string, args, options);
  }
}
