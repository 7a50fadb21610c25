import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { ChrootCommunicator } from "../../../communicator/chroot-communicator.js";
import { KilnError } from "../../../errors.js";
import type { LocalFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { exec } from "../../../system/exec.js";
import { mountsUnder } from "../../../system/mounts.js";
import { makePrivateDirectory } from "../../../system/private-directory.js";
import { newestModification } from "../../../image/tree-times.js";
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
    ctx.cleanup.defer(`remove work directory ${workDirectory}`, async () => {
      // Provisioner mounts live in private namespaces; this guards against ever deleting through one.
      const mounted = await mountsUnder(workDirectory);
      if (mounted.length > 0) {
        throw new KilnError("KILN_STILL_MOUNTED", `not removing ${workDirectory}: ${mounted.join(", ")} still mounted`, { hint: `umount -R ${mounted[0]}, then rm -rf ${workDirectory}` });
      }
      await rm(workDirectory, { recursive: true, force: true });
    }, { keepOnAbort: true });
    const root = join(workDirectory, "root");
    await mkdir(root, { mode: 0o755 });
    if (base.kind === "directory") {
      await exec("cp", ["-a", "-x", "--", `${base.path}/.`, root], { what: "copying the base directory", signal: ctx.signal });
    } else {
      // A user namespace cannot create device nodes: rootless images get an empty /dev, which
      // the kernel's devtmpfs fills at boot anyway.
      const skipDevices = rootless ? ["--exclude=./dev/*", "--exclude=dev/*"] : [];
      await exec("tar", ["--extract", "--numeric-owner", "--same-permissions", "--xattrs", "--xattrs-include=*", "--acls", ...skipDevices, "-f", base.path, "-C", root], {
        what: "unpacking the base", signal: ctx.signal, hint: "the base tarball may be damaged: remove it from the cache to rebuild it",
      });
    }
    // A given base with no epoch of its own is dated by its newest file, so copies of it build alike.
    const sourceDateEpoch = base.sourceDateEpoch ?? (await newestModification(root));
    return { output: { tree: { workDirectory, root: new ChrootCommunicator(root), sourceDateEpoch } }, summary: `into ${root}` };
  },
};
