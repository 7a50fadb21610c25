import type { Communicator } from "../../../communicator/communicator.js";
import type { Step } from "../../../pipeline/step.js";
import { runProvisioner } from "../../../provisioners/provisioner.js";
import type { AmazonEbsBuildRequest } from "../request.js";

/** The template's provisioners, in order, on the build instance through its communicator. */
export const provision: Step<AmazonEbsBuildRequest & { communicator?: Communicator }, object> = {
  name: "provision",
  run: async (ctx, { loaded, communicator }) => {
    const { provisioners } = loaded.template;
    if (communicator === undefined || provisioners.length === 0) return { output: {}, summary: "nothing to provision" };
    for (const [i, config] of provisioners.entries()) {
      const label = `provisioner ${i + 1} (${config.type})`;
      const started = ctx.report.elapsed();
      await runProvisioner(config, { ctx, communicator, templateDirectory: loaded.directory, label });
      ctx.report.info(`${label} finished in ${(ctx.report.elapsed() - started).toFixed(1)}s`);
    }
    return { output: {}, summary: `${provisioners.length} provisioner${provisioners.length === 1 ? "" : "s"} ran over ${communicator.description}` };
  },
};
