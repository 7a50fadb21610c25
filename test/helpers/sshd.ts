import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./free-port.js";

/** A real OpenSSH server (apt openssh-server) on a free loopback port, with its own config and host key. */
export interface Sshd {
  port: number;
  /** SHA256:… of its host key, as ssh-keygen -l prints it. */
  fingerprint: string;
  /**
   * With `isolatedRoot`: the server's root as this process sees it (`/proc/PID/root`), a
   * copy-on-write overlay of this machine's root. What a session changes (the clean list
   * removing /root/.ssh/authorized_keys, say) changes only the overlay, never this machine.
   */
  root?: string;
  /** What sshd printed (-e), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts sshd. With `isolatedRoot` it runs chrooted in its own mount namespace on an overlay
 * of `/` (upper layer in `dir`), so a script that cleans "the instance" cannot touch this
 * machine; its users' keys are then their own `~/.ssh/authorized_keys` inside the overlay.
 */
export async function startSshd(dir: string, authorizedKeys: string, { isolatedRoot = false, port: wanted, extraConfig = [] }: { isolatedRoot?: boolean; port?: number; extraConfig?: string[] } = {}): Promise<Sshd> {
  const port = wanted ?? await freePort();
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // privilege separation directory
  // Started again in the same directory (a "reboot"), it keeps its host key.
  if (!existsSync(join(dir, "host_ed25519"))) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_ed25519")]);
  writeFileSync(join(dir, "authorized_keys"), authorizedKeys, { mode: 0o600 });
  // Where sshd sees `dir`: isolated, it is bound into the chroot where no clean list looks.
  const seen = isolatedRoot ? serverDirectory : dir;
  writeFileSync(join(dir, "sshd_config"), [
    `Port ${port}`, "ListenAddress 127.0.0.1", `HostKey ${join(seen, "host_ed25519")}`,
    // Isolated, it is the instance: PAM as on Debian, so a locked (!) password does not refuse keys.
    `AuthorizedKeysFile ${isolatedRoot ? ".ssh/authorized_keys" : join(dir, "authorized_keys")}`, "StrictModes no", `UsePAM ${isolatedRoot ? "yes" : "no"}`,
    "PermitRootLogin prohibit-password", "PasswordAuthentication no", `PidFile ${join(seen, "sshd.pid")}`, ...extraConfig,
  ].join("\n") + "\n");
  const sshd = ["/usr/sbin/sshd", "-D", "-e", "-f", join(seen, "sshd_config")];
  const child: ChildProcess = isolatedRoot
    ? spawn("unshare", ["--mount", "sh", "-ec", overlayRoot(dir, sshd.join(" "))], { stdio: ["ignore", "ignore", "pipe"] })
    : spawn(sshd[0] ?? "", sshd.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.on("data", (d: Buffer) => { log += d.toString(); });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited (${child.exitCode}): ${log}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection(port, "127.0.0.1", () => { socket.end(); resolve(true); });
      socket.on("error", () => resolve(false));
    });
    if (open) break;
    if (Date.now() > deadline) throw new Error(`sshd did not listen: ${log}`);
    await sleep(100);
  }
  const fingerprint = execFileSync("ssh-keygen", ["-l", "-f", join(dir, "host_ed25519.pub")], { encoding: "utf8" }).split(" ")[1] ?? "";
  return {
    port, fingerprint, log: () => log, ...(isolatedRoot ? { root: `/proc/${child.pid}/root` } : {}),
    stop: async () => {
      // The listener's connections too (each its own sshd child), as a reboot would end them.
      if (child.pid !== undefined) spawnSync("pkill", ["-TERM", "-P", String(child.pid)]);
      child.kill("SIGTERM");
      await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.on("exit", resolve)));
    },
  };
}

const serverDirectory = "/run/kiln-test-sshd";

/**
 * A shell script (run by `unshare --mount`) that chroots `command` into an overlay of `/`. The
 * layers are on a tmpfs of the namespace's own (invisible through the overlay, gone with it);
 * `dir` (config, host key) is bound in at `serverDirectory`, which cleaning leaves alone.
 */
function overlayRoot(dir: string, command: string): string {
  const layers = join(dir, "layers");
  mkdirSync(layers, { recursive: true });
  const merged = join(layers, "merged");
  return [
    "mount --make-rprivate /",
    `mount -t tmpfs kiln-test-layers ${layers}`,
    `mkdir ${layers}/upper ${layers}/work ${merged}`,
    `mount -t overlay kiln-test-root -o lowerdir=/,upperdir=${layers}/upper,workdir=${layers}/work ${merged}`,
    `mount --rbind /dev ${merged}/dev`,
    `mount -t proc proc ${merged}/proc`,
    `mkdir -p ${merged}${serverDirectory} ${merged}/run/sshd`,
    `mount --bind ${dir} ${merged}${serverDirectory}`,
    `exec chroot ${merged} ${command}`,
  ].join("\n");
}
