import { copyFile, lstat, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Step, StepContext } from "../../../pipeline/step.js";
import { runProvisioner } from "../../../provisioners/provisioner.js";
import type { LocalBuildRequest } from "../request.js";
import type { WorkTree } from "./unpack-base.js";

/** Package maintainer scripts consult this and start no service while it exits 101. */
const policyRcD = "#!/bin/sh\n# written by kiln for the build; removed before imaging\nexit 101\n";

/**
 * Runs the template's provisioners in order inside the tree. For their duration the tree gets
 * a policy-rc.d (package installs start no services) and this machine's resolv.conf (so apt
 * can reach its mirror); both are taken out again before the step ends.
 */
export const provision: Step<LocalBuildRequest & { tree: WorkTree }, object> = {
  name: "provision",
  run: async (ctx, { loaded, tree }) => {
    const provisioners = loaded.template.provisioners;
    const restore = await prepareTree(ctx, tree.root.root);
    for (const [i, config] of provisioners.entries()) {
      const label = `provisioner ${i + 1} (${config.type})`;
      const started = Date.now();
      await runProvisioner(config, { ctx, communicator: tree.root, templateDirectory: loaded.directory, label });
      ctx.report.info(`${label} finished in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    }
    await restore(ctx.signal);
    return { output: {}, summary: provisioners.length === 0 ? "no provisioners" : `${provisioners.length} provisioner${provisioners.length === 1 ? "" : "s"} ran` };
  },
};

async function prepareTree(ctx: StepContext, root: string): Promise<(signal: AbortSignal) => Promise<void>> {
  const policy = join(root, "usr/sbin/policy-rc.d");
  await writeFile(policy, policyRcD, { mode: 0o755 });
  const removePolicy = ctx.cleanup.defer("remove policy-rc.d from the tree", () => rm(policy, { force: true }));

  // The base's own resolv.conf (if any) is set aside and put back, so the build host's never stays.
  const resolv = join(root, "etc/resolv.conf");
  const aside = join(root, "etc/resolv.conf.kiln-aside");
  const hadOwn = await lstat(resolv).then(() => true, () => false);
  if (hadOwn) await rename(resolv, aside);
  await copyFile("/etc/resolv.conf", resolv).catch(() => writeFile(resolv, ""));
  const restoreResolv = ctx.cleanup.defer("restore the tree's resolv.conf", async () => {
    await rm(resolv, { force: true });
    if (hadOwn) await rename(aside, resolv);
  });
  return async (signal) => {
    await restoreResolv(signal);
    await removePolicy(signal);
  };
}
