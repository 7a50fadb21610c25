import { readFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";

/**
 * True inside a user namespace that maps only part of the id range (a rootless build): there
 * kiln is "root" but cannot create device nodes or mount sysfs.
 */
export async function inUserNamespace(): Promise<boolean> {
  const map = await readFile("/proc/self/uid_map", "utf8").catch(() => "");
  return !/^\s*0\s+0\s+4294967295\s*$/.test(map);
}

/** The argv prefix that runs a command as root of a new user namespace with the user's subordinate ids. */
export const rootlessPrefix = ["unshare", "--user", "--map-root-user", "--map-auto", "--mount", "--propagation", "private", "--"];

/** Whether this machine lets the current user create such a namespace (kernel, uidmap, /etc/subuid). */
export function canEnterRootless(): { ok: true } | { ok: false; reason: string } {
  const probe = spawnSync(rootlessPrefix[0] as string, [...rootlessPrefix.slice(1), "true"], { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
  if (probe.error !== undefined) return { ok: false, reason: probe.error.message };
  if (probe.status !== 0) return { ok: false, reason: (probe.stderr.trim().split("\n")[0] ?? "").replace(/^unshare: /, "") };
  return { ok: true };
}
