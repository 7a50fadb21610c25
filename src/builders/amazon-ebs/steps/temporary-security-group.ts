import { CreateSecurityGroupCommand, DescribeSubnetsCommand, DescribeVpcsCommand } from "@aws-sdk/client-ec2";
import { KilnError } from "../../../errors.js";
import type { Step } from "../../../pipeline/step.js";
import { aws, type AwsClients } from "../aws-clients.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildJournal } from "../journal.js";
import { kilnTags, tagOnCreate } from "../tags.js";
import { track } from "../tracked-resource.js";

/**
 * A security group of the build's own, in the subnet's VPC, the template's VPC or the default
 * one. It has no ingress rule: with no communicator nothing needs to reach the instance (the
 * SSH communicator will open its port to this machine's address /32 only).
 */
export const temporarySecurityGroup: Step<AmazonEbsBuildRequest & { aws: AwsClients; journal: BuildJournal }, { securityGroupId: string; vpcId: string }> = {
  name: "create temporary security group",
  run: async (ctx, input) => {
    const { builder, aws: clients, buildId, kilnVersion } = input;
    const vpcId = await vpcOf(builder.subnet_id, builder.vpc_id, clients, ctx.signal);
    const name = `kiln-${buildId}`;
    const created = await aws("creating the temporary security group (ec2:CreateSecurityGroup)", () => clients.ec2.send(new CreateSecurityGroupCommand({
      GroupName: name, Description: `kiln build ${buildId}: temporary, deleted when the build ends`, VpcId: vpcId,
      TagSpecifications: tagOnCreate(["security-group"], kilnTags(buildId, kilnVersion, { Name: name })),
    }), { abortSignal: ctx.signal }), ctx.signal);
    const id = created.GroupId ?? "";
    await track(ctx, input, { type: "security-group", id, temporary: true }, `delete security group ${id}`);
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
