import { AuthorizeSecurityGroupIngressCommand, CreateSecurityGroupCommand, DescribeInstanceTypeOfferingsCommand, DescribeSecurityGroupsCommand, DescribeSubnetsCommand, DescribeVpcsCommand, type Subnet } from "@aws-sdk/client-ec2";
import { isIP } from "node:net";
import { KilnError } from "../../../errors.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import type { AwsClients } from "../aws-clients.js";
import { aws, awsEventually } from "../aws-errors.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildJournal } from "../journal.js";
import { kilnTags, tagOnCreate } from "../tags.js";
import { createResource, ownedBy, track } from "../tracked-resource.js";
import { addressToward, chosenInterface, isPrivate, onlyByDefaultRoute, type SshInterface } from "../ssh-address.js";

/**
 * A security group of the build's own, in the subnet's VPC, the template's VPC or the default
 * one. With SSH, its one ingress rule opens the SSH port to the address kiln will come from:
 * this machine's public address /32 when SSH goes to the instance's public address, this
 * machine's own address on its route into the VPC when it goes to a private one, or the CIDRs
 * the template names; never to the world unless the template says 0.0.0.0/0.
 */
export const temporarySecurityGroup: Step<AmazonEbsBuildRequest & { aws: AwsClients; journal: BuildJournal }, { securityGroupId: string; vpcId: string; subnetId?: string; sshInterface: SshInterface }, AmazonEbsFacts> = {
  name: "create temporary security group",
  plan: ({ builder, buildId, tags, ssh }) => ({
    calls: ["ec2:DescribeVpcs or ec2:DescribeSubnets (read-only)", ...(builder.vpc_id !== undefined && builder.subnet_id === undefined ? ["ec2:DescribeInstanceTypeOfferings (read-only)"] : []), "ec2:CreateSecurityGroup", ...(builder.communicator === "ssh" ? ["ec2:AuthorizeSecurityGroupIngress"] : [])],
    creates: [{ type: "security group", name: `kiln-${buildId}`, tags: tags({ Name: `kiln-${buildId}` }) }],
    note: builder.communicator === "ssh" ? `port ${builder.ssh_port}/tcp from ${ssh.cidrs}` : "no ingress (communicator none)",
  }),
  run: async (ctx, input) => {
    const { builder, aws: clients, buildId, kilnVersion } = input;
    const network = await networkOf(builder, clients, ctx.signal);
    const sshInterface = chosenInterface(builder, network.givesPublicAddress);
    const where = { vpcId: network.vpcId, sshInterface, ...(network.subnetId === undefined ? {} : { subnetId: network.subnetId }) };
    const name = `kiln-${buildId}`;
    const created = await createResource<{ GroupId?: string | undefined }>("creating the temporary security group (ec2:CreateSecurityGroup)", (signal) => clients.ec2.send(new CreateSecurityGroupCommand({
      GroupName: name, Description: `kiln build ${buildId}: temporary, deleted when the build ends`, VpcId: network.vpcId,
      TagSpecifications: tagOnCreate(["security-group"], kilnTags(buildId, kilnVersion, { Name: name })),
    }), { abortSignal: signal }), {
      duplicate: "InvalidGroup.Duplicate",
      findOurs: async () => {
        const found = (await clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: "group-name", Values: [name] }, { Name: "vpc-id", Values: [network.vpcId] }] }))).SecurityGroups?.[0];
        return found !== undefined && ownedBy(buildId, found.Tags) ? { GroupId: found.GroupId } : undefined;
      },
    });
    const id = created.GroupId ?? "";
    await track(ctx, input, { type: "security-group", id, temporary: true }, `delete security group ${id}`);
    const inVpc = `${network.vpcId}${network.subnetId === undefined ? "" : ` (${network.subnetId}, ${network.zone ?? "?"})`}`;
    if (builder.communicator === "none") return { output: { securityGroupId: id, ...where }, summary: `${id} in ${inVpc} (no ingress: communicator none)` };
    const cidrs = builder.temporary_security_group_source_cidrs ?? [isPrivate(sshInterface)
      ? hostCidr(await privateSource(ctx, network.cidr))
      // KILN_CHECK_IP_URL overrides the template's check_ip_url (a network that needs its own service).
      : await ownAddress(process.env.KILN_CHECK_IP_URL ?? builder.check_ip_url, ctx.signal)];
    // By prefix, not spelling: 0.0.0.0/1 + 128.0.0.0/1 is the whole internet too.
    const wide = cidrs.filter((c) => Number(c.split("/")[1]) < (c.includes(":") ? 32 : 8));
    if (wide.length > 0) ctx.report.warn(`the build instance's SSH port is open to very wide ranges (${wide.join(", ")}), as the template says`);
    await awsEventually(`opening port ${builder.ssh_port} to ${cidrs.join(", ")} (ec2:AuthorizeSecurityGroupIngress)`, () => clients.ec2.send(new AuthorizeSecurityGroupIngressCommand({
      GroupId: id,
      IpPermissions: [{
        IpProtocol: "tcp", FromPort: builder.ssh_port, ToPort: builder.ssh_port,
        IpRanges: cidrs.filter((c) => !c.includes(":")).map((CidrIp) => ({ CidrIp, Description: `kiln build ${buildId}` })),
        Ipv6Ranges: cidrs.filter((c) => c.includes(":")).map((CidrIpv6) => ({ CidrIpv6, Description: `kiln build ${buildId}` })),
      }],
    }), { abortSignal: ctx.signal }), ctx.signal);
    return { output: { securityGroupId: id, ...where }, summary: `${id} in ${inVpc}, ${builder.ssh_port}/tcp from ${cidrs.join(", ")} (SSH to the instance's ${sshInterface.replace("_", " ")})` };
  },
};

/** This machine's address toward the VPC, said plainly when only the default route goes there. */
async function privateSource(ctx: { report: { warn(text: string): void } }, network: string): Promise<string> {
  const address = await addressToward(network);
  if (onlyByDefaultRoute(network.split("/")[0] ?? "") === true) {
    ctx.report.warn(`this machine reaches ${network} only by its default route: the port is opened to ${address}/32, which the instance sees only if this machine is inside the VPC or a VPN or peering gives it that address; else set temporary_security_group_source_cidrs, or use a public ssh_interface`);
  }
  return address;
}

const hostCidr = (address: string): string => `${address}/${address.includes(":") ? 128 : 32}`;

interface Network {
  vpcId: string;
  subnetId?: string;
  zone?: string;
  /** The subnet's (else the VPC's) range: where the instance's private address will be. */
  cidr: string;
  /** Whether an instance launched there gets a public address unless told otherwise. */
  givesPublicAddress: boolean;
}

/**
 * The VPC of the group and the subnet of the instance: the template's subnet and its VPC; in
 * a VPC named alone, its available subnet with the most free addresses among those whose zone
 * offers the instance type (the instance must launch there, not in the default VPC); else the
 * default VPC, whose default subnets give public addresses.
 */
async function networkOf(builder: AmazonEbsBuildRequest["builder"], clients: AwsClients, signal: AbortSignal): Promise<Network> {
  const described = (subnet: Subnet): Network => ({
    vpcId: subnet.VpcId ?? "", subnetId: subnet.SubnetId ?? "", cidr: subnet.CidrBlock ?? "0.0.0.0/0", givesPublicAddress: subnet.MapPublicIpOnLaunch === true,
    ...(subnet.AvailabilityZone === undefined ? {} : { zone: subnet.AvailabilityZone }),
  });
  if (builder.subnet_id !== undefined) {
    const subnetId = builder.subnet_id;
    const subnet = (await aws(`looking up subnet ${subnetId}`, () => clients.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnetId] }), { abortSignal: signal }), signal)).Subnets?.[0];
    if (subnet?.VpcId === undefined) throw new KilnError("KILN_SUBNET_NOT_FOUND", `subnet ${subnetId} does not exist in ${clients.region}`, { hint: "check subnet_id and region" });
    return described(subnet);
  }
  if (builder.vpc_id !== undefined) {
    const vpcId = builder.vpc_id;
    const subnets = (await aws(`looking up the subnets of ${vpcId} (ec2:DescribeSubnets)`, () => clients.ec2.send(new DescribeSubnetsCommand({
      Filters: [{ Name: "vpc-id", Values: [vpcId] }, { Name: "state", Values: ["available"] }],
    }), { abortSignal: signal }), signal)).Subnets ?? [];
    if (subnets.length === 0) throw new KilnError("KILN_NO_SUBNET", `${vpcId} has no available subnet in ${clients.region}`, { hint: "check vpc_id and region, or set subnet_id" });
    // A subnet in a zone without the instance type would fail the launch with Unsupported, after the group and key exist.
    const zones = await zonesOffering(builder.instance_type, clients, signal);
    const usable = subnets.filter((s) => zones.has(s.AvailabilityZone ?? ""));
    const roomiest = usable.sort((a, b) => (b.AvailableIpAddressCount ?? 0) - (a.AvailableIpAddressCount ?? 0))[0];
    if (roomiest === undefined) {
      throw new KilnError("KILN_NO_SUBNET", `no subnet of ${vpcId} is in a zone that offers ${builder.instance_type} (its subnets are in ${[...new Set(subnets.map((s) => s.AvailabilityZone))].join(", ")}; ${builder.instance_type} is offered in ${[...zones].sort().join(", ") || "no zone of the region"})`, {
        hint: "set subnet_id to a subnet in a zone that offers the type, or choose another instance_type",
      });
    }
    return described(roomiest);
  }
  const vpcs = await aws("looking up the default VPC (ec2:DescribeVpcs)", () => clients.ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: "isDefault", Values: ["true"] }] }), { abortSignal: signal }), signal);
  const vpc = vpcs.Vpcs?.[0];
  if (vpc?.VpcId === undefined) {
    throw new KilnError("KILN_NO_DEFAULT_VPC", `${clients.region} has no default VPC`, { hint: "set subnet_id (or vpc_id) in the builder" });
  }
  return { vpcId: vpc.VpcId, cidr: vpc.CidrBlock ?? "0.0.0.0/0", givesPublicAddress: true };
}

/** The zones of the region that offer an instance type (ec2:DescribeInstanceTypeOfferings). */
async function zonesOffering(instanceType: string, clients: AwsClients, signal: AbortSignal): Promise<Set<string>> {
  const zones = new Set<string>();
  let NextToken: string | undefined;
  do {
    const page = await aws(`looking up the zones that offer ${instanceType} (ec2:DescribeInstanceTypeOfferings)`, () => clients.ec2.send(new DescribeInstanceTypeOfferingsCommand({
      LocationType: "availability-zone", Filters: [{ Name: "instance-type", Values: [instanceType] }], ...(NextToken === undefined ? {} : { NextToken }),
    }), { abortSignal: signal }), signal);
    for (const offering of page.InstanceTypeOfferings ?? []) if (offering.Location !== undefined) zones.add(offering.Location);
    NextToken = page.NextToken;
  } while (NextToken !== undefined && NextToken !== "");
  return zones;
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
