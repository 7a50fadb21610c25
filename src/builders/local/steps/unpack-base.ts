import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { lchown, lstat, mkdir, mkdtemp, readdir, rename, rm, utimes } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ChrootCommunicator } from "../../../communicator/chroot-communicator.js";
import { KilnError } from "../../../errors.js";
import { CommandError } from "../../../system/command-error.js";
import type { LocalFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { exec } from "../../../system/exec.js";
import { removeUnlessMounted } from "../../../system/mounts.js";
import { makePrivateDirectory } from "../../../system/private-directory.js";
import { newestModification } from "../../../image/tree-times.js";
import { asTreeRoot, foreignTreeOwner, giveToTree, type ForeignTreeOwner } from "../../../system/tree-owner.js";
import type { LocalBuildRequest } from "../request.js";
import type { BaseRootfs } from "./base-rootfs.js";

export interface WorkTree {
  /** The build's own directory; removed by its undo unless `--on-error abort` keeps it. */
  workDirectory: string;
  /** The root filesystem tree being built, inside the work directory. */
  root: ChrootCommunicator;
  /** File times in the image are clamped to this. */
  sourceDateEpoch: number;
}

/** Unpacks the base into a fresh work directory; every build starts from a clean copy. */
export const unpackBase: Step<LocalBuildRequest & { base: BaseRootfs; rootless: boolean }, { tree: WorkTree }, LocalFacts> = {
  name: "unpack base",
  plan: () => ({ calls: [], creates: [{ type: "work directory", name: "the unpacked tree (removed when the build ends)" }] }),
  run: async (ctx, request) => {
    const { base, workParent, buildId, rootless } = request;
    // Private and unpredictably named, in a parent only root or we can change: another user cannot swap it for a link.
    const workDirectory = await makePrivateDirectory(workParent, buildId);
    // Provisioner mounts live in private namespaces; this guards against ever deleting through one.
    ctx.cleanup.defer(`remove work directory ${workDirectory}`, () => removeUnlessMounted(workDirectory), { keepOnAbort: true });
    const root = join(workDirectory, "root");
    const owner = rootless ? undefined : await foreignTreeOwner(workDirectory);
    await mkdir(root, { mode: 0o755 });
    await giveToTree(owner, root);
    await unpackAsTreeRoot(base, root, owner, ctx.signal);
    // A given base with no epoch of its own is dated by its newest file, so copies of it build alike.
    const sourceDateEpoch = base.sourceDateEpoch ?? (await newestModification(root));
    return { output: { tree: { workDirectory, root: new ChrootCommunicator(root, owner), sourceDateEpoch } }, summary: `into ${root}` };
  },
};

const tarExtract = ["tar", "--extract", "--numeric-owner", "--same-permissions", "--xattrs", "--xattrs-include=*", "--acls", "-f", "-", "-C", "."];

/**
 * Unpacks as the tree's root (so its ids are stored as the tree's, see tree-owner.ts), reading
 * the base from stdin and writing relative to the working directory: the namespace's root may
 * not traverse root's private directories. A user namespace cannot create device nodes, so /dev
 * is left out there; as real root kiln adds the base's own /dev entries itself afterwards.
 */
async function unpackAsTreeRoot(base: BaseRootfs, root: string, owner: ForeignTreeOwner | undefined, signal: AbortSignal): Promise<void> {
  const [file, ...args] = asTreeRoot(owner, [...tarExtract, "--exclude=./dev/*", "--exclude=dev/*"]);
  const hint = "the base may be damaged: remove it from the cache to rebuild it";
  if (base.kind === "directory") {
    // One tar reads the directory as data, another writes it as the tree's root.
    const reader = spawn("tar", ["--create", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "--one-file-system", "-C", base.path, "-f", "-", "."], { stdio: ["ignore", "pipe", "pipe"] });
    const read = new Promise<number | null>((resolve) => reader.on("close", resolve));
    try {
      await exec(file as string, args, { what: "copying the base directory", signal, cwd: root, stdin: reader.stdout, hint });
    } finally {
      reader.kill();
    }
    const code = await read;
    if (code !== 0) throw new CommandError("copying the base directory", `tar --create -C ${base.path} .`, code, null, []);
  } else {
    await exec(file as string, args, { what: "unpacking the base", signal, cwd: root, stdin: createReadStream(base.path), hint });
  }
  if (owner === undefined) return;
  await addDeviceNodes(base, root, owner, signal, hint);
}

/**
 * Real root makes the base's device nodes, then gives them to the tree's ids like everything
 * else. It never writes into the tree by path: the tree so far is the base's, which may hold
 * links to anywhere on the host (./dev itself, or ./etc for a hard link ./dev/x -> ./etc/y to
 * resolve through). So it extracts into a fresh private directory, where a hard link can only
 * name what that same extraction made, then moves the entries into the tree's /dev once that
 * is checked to be a real directory.
 */
async function addDeviceNodes(base: BaseRootfs, root: string, owner: ForeignTreeOwner, signal: AbortSignal, hint: string): Promise<void> {
  const staging = await mkdtemp(join(dirname(root), "dev-"));
  try {
    if (base.kind === "directory") {
      if (!(await lstat(join(base.path, "dev")).then((s) => s.isDirectory(), () => false))) return;
      await exec("cp", ["-a", "--", join(base.path, "dev"), staging], { what: "adding the base's device nodes", signal, hint });
    } else {
      let added = false;
      for (const pattern of ["./dev/*", "dev/*"]) {
        added = await exec("tar", ["--extract", "--numeric-owner", "--same-permissions", "-f", base.path, "-C", staging, "--wildcards", pattern], { what: "adding the base's device nodes", signal, hint })
          .then(() => true, (error: unknown) => {
            if (error instanceof CommandError && error.stderrTail.some((l) => l.includes("Not found in archive"))) return false;
            throw error;
          });
        if (added) break;
      }
      if (!added) return;
    }
    const dev = join(root, "dev");
    const existing = await lstat(dev).catch(() => undefined);
    if (existing === undefined) {
      await mkdir(dev, { mode: 0o755 });
      await giveToTree(owner, dev);
    } else if (!existing.isDirectory()) {
      throw new KilnError("KILN_BASE_INVALID", `the base ${base.path} is not a root filesystem kiln can use: its /dev is ${existing.isSymbolicLink() ? "a symbolic link" : "not a directory"}`, {
        hint: "a base's /dev must be a directory (kiln never writes through a link in a base)",
      });
    }
    for (const name of await readdir(join(staging, "dev"))) await rename(join(staging, "dev", name), join(dev, name));
    // As the base has it: a given base with no epoch is dated by its newest file.
    const times = existing ?? (await lstat(join(staging, "dev")));
    await utimes(dev, times.atime, times.mtime);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  await shiftOwners(join(root, "dev"), owner);
}

/** Moves what real root made under `path` (never following a link) into the tree's id range. */
async function shiftOwners(path: string, owner: ForeignTreeOwner): Promise<void> {
  const stats = await lstat(path).catch(() => undefined);
  if (stats === undefined) return;
  if (stats.uid < owner.count && stats.gid < owner.count) await lchown(path, owner.base + stats.uid, owner.base + stats.gid);
  if (stats.isDirectory()) for (const name of await readdir(path)) await shiftOwners(join(path, name), owner);
}
