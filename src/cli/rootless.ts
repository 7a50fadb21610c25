import { spawn } from "node:child_process";
import { constants, userInfo } from "node:os";
import { join } from "node:path";
import { KilnError } from "../errors.js";
import { defaultCacheDirectory } from "../builders/local/base-cache.js";
import { ensureSafeDirectory } from "../system/private-directory.js";
import { canEnterRootless, rootlessPrefix } from "../system/user-namespace.js";

/**
 * Without root, `kiln build` runs itself again as root of a user namespace mapped to the
 * user's subordinate ids (like mmdebstrap's unshare mode): chroot, private mounts and file
 * owners then work with no privilege on the host. Returns the child's exit code.
 */
export async function rebuildRootless(directories: { workDir?: string | undefined; cacheDir?: string | undefined } = {}): Promise<number> {
  const probe = canEnterRootless();
  if (!probe.ok) {
    const user = userInfo().username;
    throw new KilnError("KILN_NEEDS_ROOT", `the local builder needs root, or user namespaces with subordinate ids, and this machine refused them: ${probe.reason}`, {
      hint: `run kiln as root, or install uidmap and give ${user} ids in /etc/subuid and /etc/subgid (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user})`,
    });
  }
  // Checked here, as the real user: inside the namespace the host's root and every other user look alike (the overflow uid).
  const workParent = await ensureSafeDirectory(directories.workDir ?? process.env.KILN_WORK_DIR ?? join(process.env.TMPDIR ?? "/var/tmp", `kiln-${userInfo().username}`));
  await ensureSafeDirectory(directories.cacheDir ?? defaultCacheDirectory());
  const env = { ...process.env, KILN_WORK_DIR: workParent };
  // Its own process group, so that one Ctrl-C reaches it once: forwarded from here.
  const child = spawn(rootlessPrefix[0] as string, [...rootlessPrefix.slice(1), process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: ["ignore", "inherit", "inherit"], env, detached: true,
  });
  const forward = (signal: NodeJS.Signals): void => { child.kill(signal); };
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])));
    });
  } finally {
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
  }
}
