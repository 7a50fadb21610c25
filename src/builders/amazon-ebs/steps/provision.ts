import type { Communicator } from "../../../communicator/communicator.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { runProvisioner } from "../../../provisioners/provisioner.js";
import { provisionerApplies } from "../../../template/schema.js";
import type { AmazonEbsBuildRequest } from "../request.js";

/** The template's provisioners, in order, on the build instance through its communicator. */
export const provision: Step<AmazonEbsBuildRequest & { communicator?: Communicator }, object, AmazonEbsFacts> = {
  name: "provision",
  plan: ({ loaded, builder }) => {
    const provisioners = loaded.template.provisioners.flatMap((p, i) => (provisionerApplies(p, builder) ? [`provisioner ${i + 1} (${p.type})`] : []));
    return { calls: [], creates: [], note: provisioners.length === 0 ? "nothing to provision" : provisioners.join(", ") };
  },
  run: async (ctx, { loaded, builder, communicator }) => {
    // only/except: the provisioners meant for this builder.
    const provisioners = loaded.template.provisioners.filter((p) => provisionerApplies(p, builder));
    // Without a communicator only shell-local (this machine) can run; validation refused the rest.
    const runnable = communicator === undefined ? provisioners.filter((p) => p.type === "shell-local") : provisioners;
    if (runnable.length === 0) return { output: {}, summary: "nothing to provision" };
    const target = communicator ?? unreachable;
    for (const [i, config] of loaded.template.provisioners.entries()) {
      if (!runnable.includes(config)) continue;
      const label = `provisioner ${i + 1} (${config.type})`;
      const started = ctx.report.elapsed();
      await runProvisioner(config, { ctx, communicator: target, templateDirectory: loaded.directory, label });
      ctx.report.info(`${label} finished in ${(ctx.report.elapsed() - started).toFixed(1)}s`);
    }
    return { output: {}, summary: `${runnable.length} provisioner${runnable.length === 1 ? "" : "s"} ran${communicator === undefined ? " on this machine" : ` over ${communicator.description}`}` };
  },
};

/** What shell-local is handed where the instance cannot be reached: it never uses it. */
const unreachable: Communicator = {
  description: "no communicator",
  runScript: () => Promise.reject(new Error("no communicator")),
  upload: () => Promise.reject(new Error("no communicator")),
  download: () => Promise.reject(new Error("no communicator")),
};
