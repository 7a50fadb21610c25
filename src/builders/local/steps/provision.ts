import { access } from "node:fs/promises";
import type { ChrootCommunicator } from "../../../communicator/chroot-communicator.js";
import type { LocalFacts } from "../plan-facts.js";
import type { Step, StepContext } from "../../../pipeline/step.js";
import { runProvisioner } from "../../../provisioners/provisioner.js";
import { provisionerApplies } from "../../../template/schema.js";
import type { LocalBuildRequest } from "../request.js";
import type { WorkTree } from "./unpack-base.js";

// Package maintainer scripts consult policy-rc.d and start no service while it exits 101.
// Both scripts run inside the chroot, so a symlink in the tree can never point them at the host.
const lend = `mkdir -p /usr/sbin
rm -f /usr/sbin/policy-rc.d
printf '#!/bin/sh\\n# written by kiln for the build; removed before imaging\\nexit 101\\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
if [ -e /etc/resolv.conf ] || [ -L /etc/resolv.conf ]; then mv /etc/resolv.conf /etc/resolv.conf.kiln-aside; fi
`;
const giveBack = `rm -f /usr/sbin/policy-rc.d /etc/resolv.conf
if [ -e /etc/resolv.conf.kiln-aside ] || [ -L /etc/resolv.conf.kiln-aside ]; then mv /etc/resolv.conf.kiln-aside /etc/resolv.conf; fi
`;

/**
 * Runs the template's provisioners in order inside the tree. For their duration the tree gets
 * a policy-rc.d (package installs start no services) and this machine's resolv.conf (so apt
 * can reach its mirror); both are taken out again before the step ends.
 */
export const provision: Step<LocalBuildRequest & { tree: WorkTree }, object, LocalFacts> = {
  name: "provision",
  plan: ({ loaded, builder }) => {
    const provisioners = loaded.template.provisioners.flatMap((p, i) => (provisionerApplies(p, builder) ? [`provisioner ${i + 1} (${p.type})`] : []));
    return { calls: [], creates: [], note: provisioners.length === 0 ? "nothing to provision" : `${provisioners.join(", ")}, confined in the tree (user, mount, PID namespaces; no_new_privs)` };
  },
  run: async (ctx, { loaded, builder, tree }) => {
    const all = loaded.template.provisioners;
    const provisioners = all.filter((p) => provisionerApplies(p, builder));
    const restore = await prepareTree(ctx, tree.root);
    for (const [i, config] of all.entries()) {
      if (!provisioners.includes(config)) continue; // only/except: another builder's
      const label = `provisioner ${i + 1} (${config.type})`;
      const started = Date.now();
      await runProvisioner(config, { ctx, communicator: tree.root, templateDirectory: loaded.directory, label });
      ctx.report.info(`${label} finished in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    }
    await restore(ctx.signal);
    return { output: {}, summary: provisioners.length === 0 ? "no provisioners" : `${provisioners.length} provisioner${provisioners.length === 1 ? "" : "s"} ran` };
  },
};

async function prepareTree(ctx: StepContext, root: ChrootCommunicator): Promise<(signal: AbortSignal) => Promise<void>> {
  const restore = ctx.cleanup.defer("take policy-rc.d and the lent resolv.conf out of the tree", (signal) =>
    root.runScript(giveBack, { what: "restoring the tree", signal }), { keepOnAbort: true });
  await root.runScript(lend, { what: "preparing the tree", signal: ctx.signal });
  const hostResolvConf = await access("/etc/resolv.conf").then(() => true, () => false);
  if (hostResolvConf) await root.upload("/etc/resolv.conf", "/etc/resolv.conf", { what: "lending resolv.conf", signal: ctx.signal, mode: "0644" });
  return restore;
}
