import type { Communicator } from "../../../communicator/communicator.js";
import { runReportingScript } from "../../../communicator/reporting-script.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
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
export const generalizeInstance: Step<AmazonEbsBuildRequest & { communicator: Communicator; windows?: WindowsTarget }, object, AmazonEbsFacts> = {
  name: "generalize build instance",
  plan: () => ({ calls: [], creates: [], note: "sysprep over SSH, chosen by the source image's launch agent" }),
  run: async (ctx, { builder, communicator, windows }) => {
    // Composed into Windows builds only, whose source image step always names the target.
    if (windows === undefined) throw new Error("generalize composed into a build that is not Windows");
    // With the template's own user data, kiln's first-boot key task was never installed.
    const ownUserData = hasOwnUserData(builder);
    if (ownUserData) ctx.report.warn("the template's own user data set up this instance: kiln's first-boot key task is not in the image; generalizing without it");
    await runReportingScript(ctx, communicator, generalizeScript(windows.agent, { armFirstBootTask: !ownUserData }), "the generalize step");
    return { output: {}, summary: `generalized with ${windows.agent} (sysprep)` };
  },
};
