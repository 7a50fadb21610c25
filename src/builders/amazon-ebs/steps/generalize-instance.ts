import type { Communicator } from "../../../communicator/communicator.js";
import { runReportingScript } from "../../../communicator/reporting-script.js";
import { ConnectionLostError } from "../../../communicator/windows-communicator.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { generalizeScript, sysprepShutsDown, sysprepStartingLine } from "../../../windows/generalize.js";
import type { WindowsTarget } from "../../../windows/launch-agent.js";
import { plannedSysprepStop } from "../../../windows/sysprep-stop.js";
import type { AwsClients } from "../aws-clients.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import { hasOwnUserData } from "../user-data.js";
import type { BuildInstance } from "./launch-instance.js";
import { waitUntilStopped } from "./stop-instance.js";

type GeneralizeInput = AmazonEbsBuildRequest & { aws: AwsClients; instance: BuildInstance; communicator: Communicator; windows?: WindowsTarget };

/**
 * Windows only, after every provisioner: keys and histories out, the first-boot key task armed
 * again, then the launch agent's own first-boot scheduling and sysprep (seed 000's
 * prepare-image script, chosen by the agent the source image carries). EC2Config's sysprep
 * shuts Windows down itself: the connection dropping then is success, and the step waits for
 * the instance to be stopped (as Packer's disable_stop_instance does), so the stop step need not.
 */
export const generalizeInstance: Step<GeneralizeInput, { stoppedBySysprep: boolean }, AmazonEbsFacts> = {
  name: "generalize build instance",
  plan: ({ builder }) => {
    const stops = plannedSysprepStop(builder);
    if (stops === "never") return { calls: [], creates: [], note: "sysprep over SSH, chosen by the source image's launch agent" };
    return {
      calls: [`ec2:DescribeInstances (read-only, until stopped${stops === "always" ? "" : "; EC2Config only"})`], creates: [],
      note: `sysprep over SSH, chosen by the source image's launch agent; ${stops === "always" ? "EC2Config's" : "with EC2Config, its"} sysprep shuts the instance down and kiln waits for it to stop`,
    };
  },
  run: async (ctx, { builder, communicator, windows, aws: clients, instance }) => {
    // Composed into Windows builds only, whose source image step always names the target.
    if (windows === undefined) throw new Error("generalize composed into a build that is not Windows");
    // With the template's own user data, kiln's first-boot key task was never installed.
    const ownUserData = hasOwnUserData(builder);
    if (ownUserData) ctx.report.warn("the template's own user data set up this instance: kiln's first-boot key task is not in the image; generalizing without it");
    const what = `generalizing instance ${instance.id} (${windows.agent} sysprep)`;
    let sysprepStarted = false;
    const watched = noticing(communicator, sysprepStartingLine, () => { sysprepStarted = true; });
    const shutsDown = sysprepShutsDown(windows.agent);
    try {
      await runReportingScript(ctx, watched, generalizeScript(windows.agent, { armFirstBootTask: !ownUserData }), what);
    } catch (error) {
      // Only a connection lost once sysprep ran is its shutdown; a non-zero exit is a failure either way.
      if (!(shutsDown && sysprepStarted && error instanceof ConnectionLostError)) throw error;
      ctx.report.info(`the connection closed as ${windows.agent}'s sysprep shut Windows down`);
    }
    if (!shutsDown) return { output: { stoppedBySysprep: false }, summary: `generalized with ${windows.agent} (sysprep)` };
    ctx.report.info(`waiting for instance ${instance.id} to stop (${windows.agent}'s sysprep shuts it down; kiln sends no StopInstances)`);
    const gone = instance.spot
      ? `a spot instance ends when Windows shuts down, and ${windows.agent}'s sysprep always shuts it down: build this image without spot_price`
      : "sysprep's shutdown should stop it: check that nothing else (a person, a policy) terminated it, then build again";
    await waitUntilStopped(ctx, clients, instance, builder, gone);
    return { output: { stoppedBySysprep: true }, summary: `generalized with ${windows.agent} (sysprep); sysprep stopped the instance ${instance.id} itself` };
  },
};

/** The same communicator, calling `seen` when a script prints `line` (Windows ends lines with CRLF). */
function noticing(target: Communicator, line: string, seen: () => void): Communicator {
  return {
    description: target.description,
    runScript: (script, options) => target.runScript(script, {
      ...options,
      onStdoutLine: (said) => {
        if (said.trimEnd() === line) seen();
        options.onStdoutLine?.(said);
      },
    }),
    upload: (localPath, targetPath, options) => target.upload(localPath, targetPath, options),
    download: (targetPath, localPath, options) => target.download(targetPath, localPath, options),
  };
}
