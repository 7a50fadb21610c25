import { chown, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * Who owns an image tree on the build host, and so who runs inside it.
 *
 * Run as real root, kiln stores the tree's ids 0..65535 as host ids `base`..`base+65535` and
 * runs everything that touches the tree (unpacking, provisioners, mke2fs) as root of a user
 * namespace that maps them back: root inside the tree is then an unprivileged id outside it,
 * with no capability over anything on the host. The range is systemd's "foreign UID range"
 * (0x7FFE0000, 65536 ids), reserved for OS trees that belong to no host user.
 *
 * A rootless build (`undefined` here) already runs in a user namespace whose root is the
 * invoking user, so the tree keeps the ids it sees.
 */
export interface ForeignTreeOwner {
  base: number;
  count: number;
  /** A private directory with kiln's newuidmap/newgidmap (see below). */
  idmap: string;
}

export const foreignIdBase = 0x7ffe0000;
export const foreignIdCount = 0x10000;

/**
 * unshare(1) asks newuidmap(1) to write a namespace's id maps, and the shadow suite's one only
 * allows ranges listed in /etc/subuid, where root has none. Root may write any map itself, so
 * kiln puts first on unshare's PATH a newuidmap that does just that: `newuidmap PID INNER OUTER COUNT`.
 */
const idmapScript = (file: "uid_map" | "gid_map"): string => `#!/bin/sh
printf '%s %s %s\\n' "$2" "$3" "$4" > "/proc/$1/${file}"
`;

/** Sets up the foreign owner for a tree about to be made in `workDirectory` (private, root's). */
export async function foreignTreeOwner(workDirectory: string): Promise<ForeignTreeOwner> {
  const idmap = join(workDirectory, "idmap");
  await mkdir(idmap, { mode: 0o700 });
  await writeFile(join(idmap, "newuidmap"), idmapScript("uid_map"), { mode: 0o700, flag: "wx" });
  await writeFile(join(idmap, "newgidmap"), idmapScript("gid_map"), { mode: 0o700, flag: "wx" });
  return { base: foreignIdBase, count: foreignIdCount, idmap };
}

/** Makes `path` (a directory or file kiln created) belong to the tree's root. */
export async function giveToTree(owner: ForeignTreeOwner | undefined, path: string): Promise<void> {
  if (owner !== undefined) await chown(path, owner.base, owner.base);
}

/**
 * The builder's PATH without relative entries ("." or an empty one, as in "PATH=:/usr/bin"):
 * commands that work on the tree run with it as their working directory, where such an entry
 * would find a program the image planted.
 */
export function absolutePath(path: string | undefined): string {
  const entries = (path ?? "").split(":").filter((entry) => entry.startsWith("/"));
  return entries.length > 0 ? entries.join(":") : "/usr/sbin:/usr/bin:/sbin:/bin";
}

/**
 * The argv that runs `command` as the tree's root: in a user namespace mapping the tree's ids,
 * with PATH finding kiln's newuidmap. Paths must not need traversing root's private
 * directories (the namespace's root cannot): run it with the tree as its working directory.
 * Every program is found by an absolute path or on absolute PATH entries, never in the tree.
 */
export function asTreeRoot(owner: ForeignTreeOwner | undefined, command: readonly string[]): string[] {
  // Dies with kiln (a SIGKILLed kiln must not leave mke2fs writing); armed after unshare's
  // setuid, which clears a parent-death signal set before it.
  const diesWithKiln = ["setpriv", "--pdeathsig", "KILL", "--", ...command];
  if (owner === undefined) return ["/usr/bin/env", `PATH=${absolutePath(process.env["PATH"])}`, ...diesWithKiln];
  const map = `${owner.base},0,${owner.count}`;
  return ["/usr/bin/env", `PATH=${owner.idmap}:${absolutePath(process.env["PATH"])}`, "unshare", "--user", `--map-users=${map}`, `--map-groups=${map}`, "--setuid", "0", "--setgid", "0", "--", ...diesWithKiln];
}
