import { StopInstancesCommand } from "@aws-sdk/client-ec2";
import { KilnError } from "../../../errors.js";
import type { StepContext } from "../../../pipeline/step.js";
import type { AmazonEbsBuilderConfig } from "../../../template/schema.js";
import { plannedSysprepStop } from "../../../windows/sysprep-stop.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import type { AwsClients } from "../aws-clients.js";
import { aws } from "../aws-errors.js";
import { describeInstance } from "../instance-state.js";
import { pollUntil } from "../poll.js";
import { waitPolicy } from "../wait-policy.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildInstance } from "./launch-instance.js";

/** One look: stopped (true) or not yet (undefined); shutting-down or terminated is an error, `goneHint` says why it may have gone. */
export async function stoppedNow(clients: AwsClients, instance: BuildInstance, signal: AbortSignal, goneHint: string): Promise<true | undefined> {
  const state = (await describeInstance(clients, instance.id, signal))?.State;
  if (state?.Name === "terminated" || state?.Name === "shutting-down") throw new KilnError("KILN_INSTANCE_GONE", `instance ${instance.id} is ${state.Name} instead of stopping`, { hint: goneHint });
  return state?.Name === "stopped" ? true : undefined;
}

/** Polls DescribeInstances, within the build's instance wait, until the instance is stopped. */
export async function waitUntilStopped(ctx: StepContext, clients: AwsClients, instance: BuildInstance, builder: Pick<AmazonEbsBuilderConfig, "wait" | "aws_polling">, goneHint: string): Promise<void> {
  await pollUntil(`instance ${instance.id} to stop`, () => stoppedNow(clients, instance, ctx.signal, goneHint), { signal: ctx.signal, report: ctx.report, ...waitPolicy(builder, "instance") });
}

const terminatedElsewhere = "something else terminated it (a spot reclaim, a person, a policy): build again";

/**
 * The image is made from a stopped instance: a consistent disk, no writes during the snapshot.
 * A spot instance cannot be stopped; CreateImage reboots it instead, for the same consistency.
 * An instance EC2Config's sysprep already stopped (the generalize step waited for it) is not
 * stopped again.
 */
export const stopInstance: Step<AmazonEbsBuildRequest & { aws: AwsClients; instance: BuildInstance; stoppedBySysprep?: boolean }, object, AmazonEbsFacts> = {
  name: "stop build instance",
  plan: ({ builder }) => {
    const bySysprep = plannedSysprepStop(builder);
    const note = builder.spot_price !== undefined ? "a spot instance is not stopped (CreateImage reboots it)"
      : bySysprep === "always" ? "sysprep (EC2Config) stopped it already: one DescribeInstances confirms it, no StopInstances"
        : bySysprep === "with EC2Config" ? "with EC2Config, sysprep stopped it already: one DescribeInstances confirms it, no StopInstances" : "";
    return { calls: bySysprep === "always" ? ["ec2:DescribeInstances (read-only, once)"] : ["ec2:StopInstances", "ec2:DescribeInstances (read-only, until stopped)"], creates: [], note };
  },
  run: async (ctx, { builder, aws: clients, instance, stoppedBySysprep }) => {
    if (instance.spot) return { output: {}, summary: `skipped: spot instance ${instance.id} cannot be stopped; CreateImage reboots it` };
    // Should someone have started it again since, it is stopped below as any other.
    if (stoppedBySysprep === true && await stoppedNow(clients, instance, ctx.signal, terminatedElsewhere) === true) {
      return { output: {}, summary: `${instance.id} already stopped by sysprep (no StopInstances)` };
    }
    await aws(`stopping instance ${instance.id}`, () => clients.ec2.send(new StopInstancesCommand({ InstanceIds: [instance.id] }), { abortSignal: ctx.signal }), ctx.signal);
    await waitUntilStopped(ctx, clients, instance, builder, terminatedElsewhere);
    return { output: {}, summary: `${instance.id} stopped` };
  },
};
