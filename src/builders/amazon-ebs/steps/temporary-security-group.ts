import { setTimeout as sleep } from "node:timers/promises";
import { CreateSecurityGroupCommand, DeleteSecurityGroupCommand, DescribeSubnetsCommand, DescribeVpcsCommand } from "@aws-sdk/client-ec2";
import { KilnError } from "../../../errors.js";
import type { Step } from "../../../pipeline/step.js";
import { aws, type AwsClients } from "../aws-clients.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import { kilnTags, tagOnCreate } from "../tags.js";

/**
 * A security group of the build's own, in the subnet's VPC, the template's VPC or the default
 * one. It has no ingress rule: with no communicator nothing needs to reach the instance (the
 * SSH communicator will open its port to this machine's address /32 only).
 */
export const temporarySecurityGroup: Step<AmazonEbsBuildRequest & { aws: AwsClients }, { securityGroupId: string; vpcId: string }> = {
  name: "create temporary security group",
  run: async (ctx, { builder, aws: clients, buildId, kilnVersion }) => {
    const vpcId = await vpcOf(builder.subnet_id, builder.vpc_id, clients, ctx.signal);
    const name = `kiln-${buildId}`;
    const created = await aws("creating the temporary security group (ec2:CreateSecurityGroup)", () => clients.ec2.send(new CreateSecurityGroupCommand({
      GroupName: name, Description: `kiln build ${buildId}: temporary, deleted when the build ends`, VpcId: vpcId,
      TagSpecifications: tagOnCreate(["security-group"], kilnTags(buildId, kilnVersion, { Name: name })),
    }), { abortSignal: ctx.signal }), ctx.signal);
    const id = created.GroupId ?? "";
    ctx.cleanup.defer(`delete security group ${id}`, (signal) => deleteSecurityGroup(clients, id, signal));
    return { output: { securityGroupId: id, vpcId }, summary: `${id} in ${vpcId} (no ingress: communicator none)` };
  },
};

async function vpcOf(subnetId: string | undefined, vpcId: string | undefined, clients: AwsClients, signal: AbortSignal): Promise<string> {
  if (subnetId !== undefined) {
    const subnets = await aws(`looking up subnet ${subnetId}`, () => clients.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnetId] }), { abortSignal: signal }), signal);
    const found = subnets.Subnets?.[0]?.VpcId;
    if (found === undefined) throw new KilnError("KILN_SUBNET_NOT_FOUND", `subnet ${subnetId} does not exist in ${clients.region}`, { hint: "check subnet_id and region" });
    return found;
  }
  if (vpcId !== undefined) return vpcId;
  const vpcs = await aws("looking up the default VPC (ec2:DescribeVpcs)", () => clients.ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: "isDefault", Values: ["true"] }] }), { abortSignal: signal }), signal);
  const found = vpcs.Vpcs?.[0]?.VpcId;
  if (found === undefined) {
    throw new KilnError("KILN_NO_DEFAULT_VPC", `${clients.region} has no default VPC`, { hint: "set subnet_id (or vpc_id) in the builder" });
  }
  return found;
}

/** A group still used by a terminating instance cannot be deleted yet: retry until cleanup's deadline. */
async function deleteSecurityGroup(clients: AwsClients, id: string, signal: AbortSignal): Promise<void> {
  for (;;) {
    try {
      await clients.ec2.send(new DeleteSecurityGroupCommand({ GroupId: id }), { abortSignal: signal });
      return;
    } catch (error) {
      if ((error as { name?: string }).name !== "DependencyViolation" || signal.aborted) throw error;
      await sleep(5000, undefined, { signal });
    }
  }
}
