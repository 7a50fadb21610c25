import { StopInstancesCommand } from "@aws-sdk/client-ec2";
import type { Step } from "../../../pipeline/step.js";
import { aws, type AwsClients } from "../aws-clients.js";
import { describeInstance } from "../instance-state.js";
import { pollUntil } from "../poll.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildInstance } from "./launch-instance.js";

/** The image is made from a stopped instance: a consistent disk, no writes during the snapshot. */
export const stopInstance: Step<AmazonEbsBuildRequest & { aws: AwsClients; instance: BuildInstance }, object> = {
  name: "stop build instance",
  run: async (ctx, { builder, aws: clients, instance }) => {
    await aws(`stopping instance ${instance.id}`, () => clients.ec2.send(new StopInstancesCommand({ InstanceIds: [instance.id] }), { abortSignal: ctx.signal }), ctx.signal);
    await pollUntil(`instance ${instance.id} to stop`, async () => ((await describeInstance(clients, instance.id, ctx.signal))?.State?.Name === "stopped" ? true : undefined), {
      signal: ctx.signal, report: ctx.report, delaySeconds: builder.wait.delay_seconds, timeoutSeconds: builder.wait.timeout_seconds,
    });
    return { output: {}, summary: `${instance.id} stopped` };
  },
};
