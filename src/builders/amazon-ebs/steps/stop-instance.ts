import { StopInstancesCommand } from "@aws-sdk/client-ec2";
import { KilnError } from "../../../errors.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { type AwsClients } from "../aws-clients.js";
import { aws } from "../aws-errors.js";
import { describeInstance } from "../instance-state.js";
import { pollUntil } from "../poll.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildInstance } from "./launch-instance.js";

/**
 * The image is made from a stopped instance: a consistent disk, no writes during the snapshot.
 * A spot instance cannot be stopped; CreateImage reboots it instead, for the same consistency.
 */
export const stopInstance: Step<AmazonEbsBuildRequest & { aws: AwsClients; instance: BuildInstance }, object, AmazonEbsFacts> = {
  name: "stop build instance",
  plan: ({ builder }) => ({ calls: ["ec2:StopInstances", "ec2:DescribeInstances (read-only, until stopped)"], creates: [], note: builder.spot_price === undefined ? "" : "a spot instance is not stopped (CreateImage reboots it)" }),
  run: async (ctx, { builder, aws: clients, instance }) => {
    if (instance.spot) return { output: {}, summary: `skipped: spot instance ${instance.id} cannot be stopped; CreateImage reboots it` };
    await aws(`stopping instance ${instance.id}`, () => clients.ec2.send(new StopInstancesCommand({ InstanceIds: [instance.id] }), { abortSignal: ctx.signal }), ctx.signal);
    await pollUntil(`instance ${instance.id} to stop`, async () => {
      const state = (await describeInstance(clients, instance.id, ctx.signal))?.State;
      if (state?.Name === "terminated" || state?.Name === "shutting-down") throw new KilnError("KILN_INSTANCE_GONE", `instance ${instance.id} is ${state.Name} instead of stopping`, { hint: "something else terminated it (a spot reclaim, a person, a policy): build again" });
      return state?.Name === "stopped" ? true : undefined;
    }, {
      signal: ctx.signal, report: ctx.report, delaySeconds: builder.wait.delay_seconds, timeoutSeconds: builder.wait.timeout_seconds,
    });
    return { output: {}, summary: `${instance.id} stopped` };
  },
};
