import { AuthorizeSecurityGroupIngressCommand, CreateSecurityGroupCommand, DescribeSecurityGroupsCommand, DescribeSubnetsCommand, DescribeVpcsCommand } from "@aws-sdk/client-ec2";
import { isIP } from "node:net";
import { KilnError } from "../../../errors.js";
import type { Step } from "../../../pipeline/step.js";
import { aws, awsEventually, type AwsClients } from "../aws-clients.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildJournal } from "../journal.js";
import { kilnTags, tagOnCreate } from "../tags.js";
import { createResource, ownedBy, track } from "../tracked-resource.js";

/**
 * A security group of the build's own, in the subnet's VPC, the template's VPC or the default
 * one. With SSH, its one ingress rule opens the SSH port to this machine's public address /32
 * (or the CIDRs the template names), never to the world unless the template says 0.0.0.0/0.
 */
export const temporarySecurityGroup: Step<AmazonEbsBuildRequest & { aws: AwsClients; journal: BuildJournal }, { securityGroupId: string; vpcId: string; subnetId?: string }> = {
  name: "create temporary security group",
  run: async (ctx, input) => {
    const { builder, aws: clients, buildId, kilnVersion } = input;
    const { vpcId, subnetId } = await networkOf(builder.subnet_id, builder.vpc_id, clients, ctx.signal);
    const where = { vpcId, ...(subnetId === undefined ? {} : { subnetId }) };
    const name = `kiln-${buildId}`;
    const created = await createResource<{ GroupId?: string | undefined }>("creating the temporary security group (ec2:CreateSecurityGroup)", (signal) => clients.ec2.send(new CreateSecurityGroupCommand({
      GroupName: name, Description: `kiln build ${buildId}: temporary, deleted when the build ends`, VpcId: vpcId,
      TagSpecifications: tagOnCreate(["security-group"], kilnTags(buildId, kilnVersion, { Name: name })),
    }), { abortSignal: signal }), {
      duplicate: /^InvalidGroup\.Duplicate$/,
      findOurs: async () => {
        const found = (await clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: "group-name", Values: [name] }, { Name: "vpc-id", Values: [vpcId] }] }))).SecurityGroups?.[0];
        return found !== undefined && ownedBy(buildId, found.Tags) ? { GroupId: found.GroupId } : undefined;
      },
    });
    const id = created.GroupId ?? "";
    await track(ctx, input, { type: "security-group", id, temporary: true }, `delete security group ${id}`);
    if (builder.communicator === "none") return { output: { securityGroupId: id, ...where }, summary: `${id} in ${vpcId} (no ingress: communicator none)` };
    // KILN_CHECK_IP_URL overrides the template's check_ip_url (a network that needs its own service).
    const cidrs = builder.temporary_security_group_source_cidrs ?? [await ownAddress(process.env.KILN_CHECK_IP_URL ?? builder.check_ip_url, ctx.signal)];
    if (cidrs.some((c) => c === "0.0.0.0/0" || c === "::/0")) ctx.report.warn(`the build instance's SSH port is open to the whole internet (${cidrs.join(", ")}), as the template says`);
    await awsEventually(`opening port ${builder.ssh_port} to ${cidrs.join(", ")} (ec2:AuthorizeSecurityGroupIngress)`, () => clients.ec2.send(new AuthorizeSecurityGroupIngressCommand({
      GroupId: id,
      IpPermissions: [{
        IpProtocol: "tcp", FromPort: builder.ssh_port, ToPort: builder.ssh_port,
        IpRanges: cidrs.filter((c) => !c.includes(":")).map((CidrIp) => ({ CidrIp, Description: `kiln build ${buildId}` })),
        Ipv6Ranges: cidrs.filter((c) => c.includes(":")).map((CidrIpv6) => ({ CidrIpv6, Description: `kiln build ${buildId}` })),
      }],
    }), { abortSignal: ctx.signal }), ctx.signal);
    return { output: { securityGroupId: id, ...where }, summary: `${id} in ${vpcId}, ${builder.ssh_port}/tcp from ${cidrs.join(", ")}` };
  },
};

/**
 * The VPC of the group and the subnet of the instance: the template's subnet and its VPC; in
 * a VPC named alone, its available subnet with the most free addresses (the instance must
 * launch there, not in the default VPC); else the default VPC and its default subnets.
 */
async function networkOf(subnetId: string | undefined, vpcId: string | undefined, clients: AwsClients, signal: AbortSignal): Promise<{ vpcId: string; subnetId?: string }> {
  if (subnetId !== undefined) {
    const subnets = await aws(`looking up subnet ${subnetId}`, () => clients.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnetId] }), { abortSignal: signal }), signal);
    const found = subnets.Subnets?.[0]?.VpcId;
    if (found === undefined) throw new KilnError("KILN_SUBNET_NOT_FOUND", `subnet ${subnetId} does not exist in ${clients.region}`, { hint: "check subnet_id and region" });
    return { vpcId: found, subnetId };
  }
  if (vpcId !== undefined) {
    const subnets = (await aws(`looking up the subnets of ${vpcId} (ec2:DescribeSubnets)`, () => clients.ec2.send(new DescribeSubnetsCommand({
      Filters: [{ Name: "vpc-id", Values: [vpcId] }, { Name: "state", Values: ["available"] }],
    }), { abortSignal: signal }), signal)).Subnets ?? [];
    const roomiest = subnets.sort((a, b) => (b.AvailableIpAddressCount ?? 0) - (a.AvailableIpAddressCount ?? 0))[0]?.SubnetId;
    if (roomiest === undefined) throw new KilnError("KILN_NO_SUBNET", `${vpcId} has no available subnet in ${clients.region}`, { hint: "check vpc_id and region, or set subnet_id" });
    return { vpcId, subnetId: roomiest };
  }
  const vpcs = await aws("looking up the default VPC (ec2:DescribeVpcs)", () => clients.ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: "isDefault", Values: ["true"] }] }), { abortSignal: signal }), signal);
  const found = vpcs.Vpcs?.[0]?.VpcId;
  if (found === undefined) {
    throw new KilnError("KILN_NO_DEFAULT_VPC", `${clients.region} has no default VPC`, { hint: "set subnet_id (or vpc_id) in the builder" });
  }
  return { vpcId: found };
}

/** This machine's public address as a /32 (/128), from the check-IP URL. */
async function ownAddress(url: string, signal: AbortSignal): Promise<string> {
  const hint = "set temporary_security_group_source_cidrs (e.g. [203.0.113.7/32]) to this machine's address, or check_ip_url to a service that returns it";
  let text: string;
  try {
    const response = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    text = (await response.text()).trim();
  } catch (error) {
    throw new KilnError("KILN_CHECK_IP_FAILED", `could not learn this machine's public address from ${url}: ${error instanceof Error ? error.message : String(error)}`, { hint });
  }
  if (isIP(text) === 4) return `${text}/32`;
  if (isIP(text) === 6) return `${text}/128`;
  throw new KilnError("KILN_CHECK_IP_FAILED", `${url} did not answer with an IP address`, { hint });
}
