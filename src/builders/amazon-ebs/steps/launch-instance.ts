import { RunInstancesCommand, type BlockDeviceMapping, type RunInstancesCommandInput } from "@aws-sdk/client-ec2";
import { KilnError } from "../../../errors.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import type { AmazonEbsBuilderConfig } from "../../../template/schema.js";
import type { AwsClients } from "../aws-clients.js";
import { awsCode, awsEventually, notYetVisible } from "../aws-errors.js";
import { describeInstance } from "../instance-state.js";
import { pollUntil } from "../poll.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildJournal } from "../journal.js";
import { clientToken, kilnTags, tagOnCreate } from "../tags.js";
import { track } from "../tracked-resource.js";
import { hasOwnUserData, templateUserData } from "../user-data.js";
import type { TemporaryKeyPair } from "./temporary-key-pair.js";
import type { SourceImage } from "./source-image.js";
import { addressesOf, type InstanceAddresses } from "../ssh-address.js";
import { imdsChoice } from "../metadata-access.js";
import { waitPolicy } from "../wait-policy.js";
import { windowsUserData } from "../../../windows/bootstrap.js";
import type { WindowsTarget } from "../../../windows/launch-agent.js";

/** EC2's answers when a spot request cannot be met now (spot_fallback then launches on demand). */
const noSpotCapacity = new Set(["InsufficientInstanceCapacity", "SpotMaxPriceTooLow", "MaxSpotInstanceCountExceeded"]);

export interface BuildInstance {
  id: string;
  /** A spot instance cannot be stopped (it is one-time): it is imaged running, with a reboot. */
  spot: boolean;
  addresses: InstanceAddresses;
}

type LaunchInput = AmazonEbsBuildRequest & {
  aws: AwsClients; journal: BuildJournal; source: SourceImage; windows?: WindowsTarget; keyPair: TemporaryKeyPair; securityGroupId: string; subnetId?: string; instanceProfile?: { name: string };
};

/**
 * The build instance, tagged in RunInstances itself, IMDSv2 only unless the template says
 * otherwise. Its undo terminates it and waits until it is gone, so the security group (whose
 * undo runs next) can be deleted.
 */
export const launchInstance: Step<LaunchInput, { instance: BuildInstance }, AmazonEbsFacts> = {
  name: "launch build instance",
  plan: ({ builder, buildId, tags, userData }) => ({
    calls: ["ec2:RunInstances", "ec2:DescribeInstances (read-only, until running)"],
    creates: [{ type: "instance", name: `${builder.instance_type}${builder.spot_price === undefined ? "" : `, spot (${builder.spot_price}${builder.spot_fallback ? ", falls back to on demand" : ""})`}`, tags: tags({ Name: `kiln build ${buildId}`, ...builder.run_tags }) }],
    note: `metadata service: ${imdsChoice(builder)}; user data: ${userData}${builder.encrypt_boot ? "; every EBS volume encrypted" : ""}`,
  }),
  run: async (ctx, input) => {
    const { builder, aws: clients, buildId, kilnVersion, loaded } = input;
    const userData = input.windows !== undefined && !hasOwnUserData(builder)
      ? windowsUserData({ target: input.windows, opensshVersion: builder.windows.openssh_version, ...(builder.windows.openssh_sha256 === undefined ? {} : { opensshSha256: builder.windows.openssh_sha256 }) })
      : await templateUserData(builder, loaded.directory);
    const tags = kilnTags(buildId, kilnVersion, { Name: `kiln build ${buildId}`, ...builder.run_tags });
    const request: RunInstancesCommandInput = {
      ImageId: input.source.id, InstanceType: builder.instance_type as RunInstancesCommandInput["InstanceType"], MinCount: 1, MaxCount: 1,
      KeyName: input.keyPair.name,
      ...(input.instanceProfile === undefined ? {} : { IamInstanceProfile: { Name: input.instanceProfile.name } }),
      ...placement(input.subnetId, input.securityGroupId, builder.associate_public_ip_address),
      ...blockDevices(builder, input.source.volumes),
      ...(userData === undefined ? {} : { UserData: Buffer.from(userData).toString("base64") }),
      MetadataOptions: {
        HttpTokens: builder.metadata_options.http_tokens, HttpEndpoint: "enabled",
        ...(builder.metadata_options.http_put_response_hop_limit === undefined ? {} : { HttpPutResponseHopLimit: builder.metadata_options.http_put_response_hop_limit }),
      },
      TagSpecifications: tagOnCreate(["instance", "volume"], tags),
    };
    // Retried while the key pair, group or a new instance profile are not yet visible to EC2.
    // Not aborted by Ctrl-C mid-flight (the instance might start unrecorded; `track` honours it
    // right after), and idempotent by its token when an answer is lost and the call retried.
    const run = (input: RunInstancesCommandInput, what: string) => awsEventually(`launching the build instance${what} (ec2:RunInstances)`,
      () => clients.ec2.send(new RunInstancesCommand({ ...input, ClientToken: clientToken(buildId, input.InstanceMarketOptions === undefined ? "launch" : "launch-spot") }), { abortSignal: AbortSignal.timeout(5 * 60_000) }), ctx.signal);
    const launched = builder.spot_price === undefined ? await run(request, "") : await run(spot(request, builder.spot_price), " on spot").catch(async (error: unknown) => {
      if (!builder.spot_fallback || !noSpotCapacity.has(awsCode(error))) throw error;
      ctx.report.warn(`no spot capacity (${error instanceof Error ? error.message : String(error)}): launching on demand, as spot_fallback says`);
      return run(request, " on demand");
    });
    const id = launched.Instances?.[0]?.InstanceId ?? "";
    const poll = { report: ctx.report, ...waitPolicy(builder, "instance") };
    await track(ctx, input, { type: "instance", id, temporary: true }, `terminate instance ${id}`);
    const running = await pollUntil(`instance ${id} to run`, async () => {
      const instance = await describeInstance(clients, id, ctx.signal).catch((error: unknown) => {
        if (notYetVisible(error)) return undefined; // a new instance may be unknown to Describe for a moment
        throw error;
      });
      const state = instance?.State?.Name;
      if (state === "shutting-down" || state === "terminated") {
        throw new KilnError("KILN_INSTANCE_GONE", `instance ${id} is ${state} instead of running: ${instance?.StateReason?.Message ?? instance?.StateTransitionReason ?? "no reason given"}`, {
          hint: "a spot instance may have been reclaimed, or the image failed to boot: look at the instance's console output",
        });
      }
      return state === "running" ? instance : undefined;
    }, { ...poll, signal: ctx.signal });
    const instance: BuildInstance = { id, spot: running.InstanceLifecycle === "spot", addresses: addressesOf(running) };
    const shown = instance.addresses.publicIp ?? instance.addresses.privateIp;
    return { output: { instance }, summary: `${id} (${builder.instance_type}) running${shown === undefined ? "" : ` at ${shown}`}` };
  },
};

/** A public address is asked for on the network interface, which then carries subnet and group. */
function placement(subnetId: string | undefined, groupId: string, publicIp: boolean | undefined): Partial<RunInstancesCommandInput> {
  if (publicIp === undefined) return { SecurityGroupIds: [groupId], ...(subnetId === undefined ? {} : { SubnetId: subnetId }) };
  return { NetworkInterfaces: [{ DeviceIndex: 0, AssociatePublicIpAddress: publicIp, Groups: [groupId], ...(subnetId === undefined ? {} : { SubnetId: subnetId }) }] };
}

/**
 * The template's volumes; with encrypt_boot, every EBS volume encrypted (the template's and each
 * one the source image maps, as it maps it), so every snapshot of the image is: an image is made
 * of all of them, not only of the root volume.
 */
function blockDevices(builder: AmazonEbsBuilderConfig, sourceVolumes: readonly BlockDeviceMapping[]): Partial<RunInstancesCommandInput> {
  const mappings = builder.launch_block_device_mappings.map(blockDevice);
  if (builder.encrypt_boot) {
    const encryption = { Encrypted: true, ...(builder.kms_key_id === undefined ? {} : { KmsKeyId: builder.kms_key_id }) };
    for (const mapping of mappings) if (mapping.Ebs !== undefined) mapping.Ebs = { ...mapping.Ebs, ...encryption };
    for (const source of sourceVolumes) {
      if (mappings.some((m) => m.DeviceName === source.DeviceName)) continue;
      // The image's own mapping, restated: its snapshot and size, so only the encryption changes.
      const { SnapshotId, VolumeSize, VolumeType, DeleteOnTermination } = source.Ebs ?? {};
      mappings.push({
        DeviceName: source.DeviceName,
        Ebs: { ...(SnapshotId === undefined ? {} : { SnapshotId }), ...(VolumeSize === undefined ? {} : { VolumeSize }), ...(VolumeType === undefined ? {} : { VolumeType }), DeleteOnTermination: DeleteOnTermination ?? true, ...encryption },
      });
    }
  }
  return mappings.length === 0 ? {} : { BlockDeviceMappings: mappings };
}

function blockDevice(d: AmazonEbsBuilderConfig["launch_block_device_mappings"][number]): BlockDeviceMapping {
  return {
    DeviceName: d.device_name,
    Ebs: {
      DeleteOnTermination: d.delete_on_termination,
      ...(d.volume_size === undefined ? {} : { VolumeSize: d.volume_size }),
      ...(d.volume_type === undefined ? {} : { VolumeType: d.volume_type }),
      // EC2 refuses Iops but on io1/io2/gp3, and Throughput but on gp3.
      ...(d.iops === undefined || !["io1", "io2", "gp3"].includes(d.volume_type ?? "") ? {} : { Iops: d.iops }),
      ...(d.throughput === undefined || d.volume_type !== "gp3" ? {} : { Throughput: d.throughput }),
      ...(d.encrypted === undefined ? {} : { Encrypted: d.encrypted }),
      // A key means encrypted: EC2 refuses a key on a volume not marked so.
      ...(d.kms_key_id === undefined ? {} : { KmsKeyId: d.kms_key_id, Encrypted: true }),
    },
  };
}

/** The same launch on the spot market: `auto` sets no maximum, so at most the on-demand price. */
function spot(request: RunInstancesCommandInput, price: string): RunInstancesCommandInput {
  return {
    ...request,
    InstanceMarketOptions: {
      MarketType: "spot",
      SpotOptions: { SpotInstanceType: "one-time", InstanceInterruptionBehavior: "terminate", ...(price === "auto" ? {} : { MaxPrice: price }) },
    },
  };
}
