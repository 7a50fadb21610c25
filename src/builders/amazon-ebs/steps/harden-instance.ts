import type { Communicator } from "../../../communicator/communicator.js";
import { runHardening } from "../../../harden/run-hardening.js";
import type { Step } from "../../../pipeline/step.js";
import type { AmazonEbsBuildRequest } from "../request.js";

/** The local builder's hardening, run on the build instance over SSH after the provisioners. */
export const hardenInstance: Step<AmazonEbsBuildRequest & { communicator?: Communicator }, object> = {
  name: "harden build instance",
  run: async (ctx, { loaded, builder, communicator }) => {
    if (builder.platform === "windows") return { output: {}, summary: "skipped on Windows (the generalize step does its part)" };
    if (communicator !== undefined) return runHardening(ctx, communicator, loaded.template.harden);
    if (loaded.template.harden !== false) ctx.report.warn("communicator none: the instance is not hardened; its passwords, sshd and first boot stay as the source image has them");
    return { output: {}, summary: "skipped (communicator none)" };
  },
};
