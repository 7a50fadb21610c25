import { CreateTagsCommand, DescribeImagesCommand, ModifyImageAttributeCommand, type Image } from "@aws-sdk/client-ec2";
import { KilnError } from "../../errors.js";
import type { StepContext } from "../../pipeline/step.js";
import type { ImageSettings } from "./image-settings.js";
import { type AwsClients } from "./aws-clients.js";
import { aws, awsEventually, notYetVisible } from "./aws-errors.js";
import { pollUntil } from "./poll.js";
import { waitPolicy } from "./wait-policy.js";
import { kilnTags } from "./tags.js";

/** A machine image the build made, in one region. */
export interface MachineImage {
  id: string;
  name: string;
  region: string;
  snapshots: string[];
  /** Its EBS snapshots that are not encrypted, by device: none may be with encrypt_boot. */
  unencrypted: string[];
}

interface Naming {
  builder: ImageSettings;
  buildId: string;
  kilnVersion: string;
}

/**
 * Waits until an image (made or copied) is available, then tags its snapshots, whose ids are
 * known only then; a copy gets the image tags again, for an EC2-compatible endpoint that ignores CopyImage's own TagSpecifications.
 */
export async function imageAvailable(ctx: StepContext, clients: AwsClients, id: string, { builder, buildId, kilnVersion }: Naming, tagImage: boolean): Promise<MachineImage> {
  const available = await pollUntil(`image ${id} in ${clients.region} to become available`, async () => {
    const found = await aws(`describing image ${id}`, () => clients.ec2.send(new DescribeImagesCommand({ ImageIds: [id] }), { abortSignal: ctx.signal }), ctx.signal)
      .catch((error: unknown) => { if (notYetVisible(error)) return undefined; throw error; }); // just made: maybe not listed yet
    const image: Image | undefined = found?.Images?.[0];
    if (image !== undefined && ["failed", "error", "invalid", "deregistered"].includes(image.State ?? "")) {
      throw new KilnError("KILN_IMAGE_FAILED", `image ${id} in ${clients.region} is ${image.State}: ${image.StateReason?.Message ?? "no reason given"}`);
    }
    return image?.State === "available" ? image : undefined;
  }, { signal: ctx.signal, report: ctx.report, ...waitPolicy(builder, "image") });
  const ebs = (available.BlockDeviceMappings ?? []).filter((m) => m.Ebs !== undefined);
  const snapshots = ebs.map((m) => m.Ebs?.SnapshotId).filter((s): s is string => s !== undefined);
  const unencrypted = ebs.filter((m) => m.Ebs?.Encrypted !== true).map((m) => `${m.DeviceName ?? "?"} (${m.Ebs?.SnapshotId ?? "no snapshot"})`);
  const tag = (resources: string[], extra: Record<string, string>): Promise<unknown> => awsEventually(`tagging ${resources.join(", ")} (ec2:CreateTags)`,
    () => clients.ec2.send(new CreateTagsCommand({ Resources: resources, Tags: kilnTags(buildId, kilnVersion, extra) }), { abortSignal: ctx.signal }), ctx.signal);
  if (tagImage) await tag([id], builder.tags);
  if (snapshots.length > 0) await tag(snapshots, builder.snapshot_tags);
  if (builder.imds_support === "v2.0") {
    // Set on each copy too: kiln does not rely on CopyImage to carry it.
    await awsEventually(`making ${id} require IMDSv2 (ec2:ModifyImageAttribute ImdsSupport)`, () => clients.ec2.send(new ModifyImageAttributeCommand({ ImageId: id, ImdsSupport: { Value: "v2.0" } }), { abortSignal: ctx.signal }), ctx.signal);
  }
  return { id, name: builder.ami_name, region: clients.region, snapshots, unencrypted };
}
