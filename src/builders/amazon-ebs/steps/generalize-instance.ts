import type { Communicator } from "../../../communicator/communicator.js";
import { runReportingScript } from "../../../communicator/reporting-script.js";
import type { Step } from "../../../pipeline/step.js";
import { generalizeScript } from "../../../windows/generalize.js";
import type { WindowsTarget } from "../../../windows/launch-agent.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import { hasOwnUserData } from "../user-data.js";

/**
 * Windows only, after every provisioner: keys and histories out, the first-boot key task armed
 * again, then the launch agent's own first-boot scheduling and sysprep (seed 000's
 * prepare-image script, chosen by the agent the source image carries).
 */
export const generalizeInstance: Step<AmazonEbsBuildRequest & { communicator?: Communicator; windows?: WindowsTarget }, object> = {
  name: "generalize build instance",
  run: async (ctx, { builder, communicator, windows }) => {
    if (windows === undefined) return { output: {}, summary: "skipped (not Windows)" };
    if (!builder.windows.generalize) {
      ctx.report.warn("windows.generalize is false: the image keeps this instance's keys and identity (no sysprep)");
      return { output: {}, summary: "skipped (windows.generalize: false)" };
    }
    if (communicator === undefined) {
      ctx.report.warn("communicator none: the instance cannot be generalized; the image keeps its identity (no sysprep)");
      return { output: {}, summary: "skipped (communicator none)" };
    }
    // With the template's own user data, kiln's first-boot key task was never installed.
    const ownUserData = hasOwnUserData(builder);
    if (ownUserData) ctx.report.warn("the template's own user data set up this instance: kiln's first-boot key task is not in the image; generalizing without it");
    await runReportingScript(ctx, communicator, generalizeScript(windows.agent, { armFirstBootTask: !ownUserData }), "the generalize step");
    return { output: {}, summary: `generalized with ${windows.agent} (sysprep)` };
  },
};
