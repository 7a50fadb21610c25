import { DescribeImagesCommand, RegisterImageCommand, type RegisterImageCommandOutput } from "@aws-sdk/client-ec2";
import type { MachineImage } from "../../builders/amazon-ebs/image-state.js";
import { imageAvailable } from "../../builders/amazon-ebs/image-state.js";
import { kilnTags, tagOnCreate } from "../../builders/amazon-ebs/tags.js";
import { createResource, ownedBy, track } from "../../builders/amazon-ebs/tracked-resource.js";
import type { Step } from "../../pipeline/step.js";
import { bootModeOf } from "../../template/schema.js";
import type { PublishAccess, PublishFacts, PublishRequest } from "./publish-request.js";
import type { UploadedSnapshot } from "./upload-snapshot.js";

/**
 * The snapshot registered as an AMI: HVM, its root device mapped to the snapshot (deleted with
 * the instance), ENA, the boot mode the disk boots by and IMDSv2 required, all in the one call
 * (RegisterImage takes them; no later change is needed). Tagged in the call, journaled, and
 * deregistered if the publish fails later.
 */
export const registerImage: Step<PublishRequest & PublishAccess & { snapshot: UploadedSnapshot }, { image: MachineImage }, PublishFacts> = {
  name: "register image",
  plan: ({ amazon, boots }) => ({
    calls: ["ec2:RegisterImage", "ec2:DescribeImages until available (read-only)", "ec2:CreateTags"],
    creates: [{ type: "image", name: amazon.name, tags: Object.fromEntries(kilnTags("<build id>", "<version>", amazon.tags).map((t) => [t.Key, t.Value])) }],
    note: `${amazon.architecture}, boot mode ${bootModeOf(amazon, boots)}, ENA ${amazon.ena ? "on" : "off"}, IMDS ${amazon.imds_support === false ? "as launched" : "v2.0 required"}${amazon.tpm_support === undefined ? "" : ", NitroTPM v2.0"}, root ${amazon.root_device_name} ${amazon.volume_type}`,
  }),
  run: async (ctx, input) => {
    const { amazon, snapshot, buildId, kilnVersion, settings, disk } = input;
    const clients = input.aws;
    const bootMode = bootModeOf(amazon, disk.boots);
    const tags = kilnTags(buildId, kilnVersion, amazon.tags);
    // RegisterImage has no client token: a retry after a lost answer meets our own image by name, proven ours by its tag.
    const registered = await createResource(`registering image ${amazon.name} (ec2:RegisterImage)`, (signal) => clients.ec2.send(new RegisterImageCommand({
      Name: amazon.name, ...(amazon.description === undefined ? {} : { Description: amazon.description }),
      Architecture: amazon.architecture, VirtualizationType: "hvm", RootDeviceName: amazon.root_device_name,
      BlockDeviceMappings: [{ DeviceName: amazon.root_device_name, Ebs: { SnapshotId: snapshot.snapshotId, VolumeSize: snapshot.volumeGiB, VolumeType: amazon.volume_type, DeleteOnTermination: true } }],
      EnaSupport: amazon.ena, BootMode: bootMode,
      ...(amazon.imds_support === false ? {} : { ImdsSupport: amazon.imds_support }),
      ...(amazon.tpm_support === undefined ? {} : { TpmSupport: amazon.tpm_support }),
      TagSpecifications: tagOnCreate(["image"], tags),
    }), { abortSignal: signal }), {
      duplicate: "InvalidAMIName.Duplicate",
      findOurs: async () => {
        const found = await clients.ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "name", Values: [amazon.name] }] }), { abortSignal: ctx.signal });
        const ours = found.Images?.find((i) => ownedBy(buildId, i.Tags));
        return ours?.ImageId === undefined ? undefined : { ImageId: ours.ImageId, $metadata: {} } as RegisterImageCommandOutput;
      },
    });
    const id = registered.ImageId ?? "";
    await track(ctx, { aws: clients, journal: input.journal, builder: settings }, { type: "image", id, temporary: false }, `deregister image ${id}`);
    // IMDS support was set by RegisterImage itself; copies get it in the share step.
    const image = await imageAvailable(ctx, clients, id, { builder: { ...settings, imds_support: undefined }, buildId, kilnVersion }, true);
    return { output: { image }, summary: `${id} in ${clients.region} (${bootMode}, ENA ${amazon.ena ? "on" : "off"}${amazon.imds_support === false ? "" : ", IMDSv2 required"})` };
  },
};
