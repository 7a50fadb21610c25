import { CreateImageCommand, CreateTagsCommand, DescribeImagesCommand, type Image } from "@aws-sdk/client-ec2";
import { KilnError } from "../../../errors.js";
import type { Step } from "../../../pipeline/step.js";
import { aws, type AwsClients } from "../aws-clients.js";
import { pollUntil } from "../poll.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildJournal } from "../journal.js";
import { kilnTags, tagOnCreate } from "../tags.js";
import { track } from "../tracked-resource.js";
import type { BuildInstance } from "./launch-instance.js";

export interface MachineImage {
  id: string;
  name: string;
  region: string;
  snapshots: string[];
}

/**
 * The artifact. If the build fails after CreateImage, the undo deregisters the image and
 * deletes its snapshots: a half-made image is not left to be launched. Snapshots are tagged
 * once the image is available (their ids are known only then).
 */
export const createImage: Step<AmazonEbsBuildRequest & { aws: AwsClients; journal: BuildJournal; instance: BuildInstance }, { image: MachineImage }> = {
  name: "create image",
  run: async (ctx, input) => {
    const { builder, aws: clients, instance, buildId, kilnVersion } = input;
    const created = await aws("creating the image (ec2:CreateImage)", () => clients.ec2.send(new CreateImageCommand({
      InstanceId: instance.id, Name: builder.ami_name,
      ...(builder.ami_description === undefined ? {} : { Description: builder.ami_description }),
      TagSpecifications: tagOnCreate(["image"], kilnTags(buildId, kilnVersion, builder.tags)),
    }), { abortSignal: ctx.signal }), ctx.signal);
    const id = created.ImageId ?? "";
    await track(ctx, input, { type: "image", id, temporary: false }, `deregister image ${id} and delete its snapshots`);
    const available = await pollUntil(`image ${id} to become available`, async () => {
      const image = await describeImage(clients, id, ctx.signal);
      if (image?.State === "failed") throw new KilnError("KILN_IMAGE_FAILED", `image ${id} failed: ${image.StateReason?.Message ?? "no reason given"}`);
      return image?.State === "available" ? image : undefined;
    }, { signal: ctx.signal, report: ctx.report, delaySeconds: builder.wait.delay_seconds, timeoutSeconds: builder.wait.timeout_seconds });
    const snapshots = snapshotsOf(available);
    if (snapshots.length > 0) {
      await aws("tagging the image's snapshots (ec2:CreateTags)", () => clients.ec2.send(new CreateTagsCommand({ Resources: snapshots, Tags: kilnTags(buildId, kilnVersion, builder.snapshot_tags) }), { abortSignal: ctx.signal }), ctx.signal);
    }
    return { output: { image: { id, name: builder.ami_name, region: clients.region, snapshots } }, summary: `${id} "${builder.ami_name}" available (snapshots ${snapshots.join(", ") || "none"})` };
  },
};

async function describeImage(clients: AwsClients, id: string, signal: AbortSignal): Promise<Image | undefined> {
  const found = await aws(`describing image ${id}`, () => clients.ec2.send(new DescribeImagesCommand({ ImageIds: [id] }), { abortSignal: signal }), signal);
  return found.Images?.[0];
}

function snapshotsOf(image: Image): string[] {
  return (image.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => s !== undefined);
}
