import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./free-port.js";

/** A real OpenSSH server (apt openssh-server) on a free loopback port, with its own config and host key. */
export interface Sshd {
  port: number;
  /** SHA256:… of its host key, as ssh-keygen -l prints it. */
  fingerprint: string;
  stop(): Promise<void>;
}

export async function startSshd(dir: string, authorizedKeys: string): Promise<Sshd> {
  const port = await freePort();
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // privilege separation directory
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_ed25519")]);
  writeFileSync(join(dir, "authorized_keys"), authorizedKeys, { mode: 0o600 });
  writeFileSync(join(dir, "sshd_config"), [
    `Port ${port}`, "ListenAddress 127.0.0.1", `HostKey ${join(dir, "host_ed25519")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`, "StrictModes no", "UsePAM no",
    "PermitRootLogin prohibit-password", "PasswordAuthentication no", `PidFile ${join(dir, "sshd.pid")}`,
  ].join("\n") + "\n");
  const child: ChildProcess = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
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
    port, fingerprint,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.on("exit", resolve)));
    },
  };
}
