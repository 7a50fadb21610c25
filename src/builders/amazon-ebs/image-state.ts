import { CreateTagsCommand, DescribeImagesCommand, type Image } from "@aws-sdk/client-ec2";
import { KilnError } from "../../errors.js";
import type { StepContext } from "../../pipeline/step.js";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";
import { type AwsClients } from "./aws-clients.js";
import { aws, awsEventually, notYetVisible } from "./aws-errors.js";
import { pollUntil } from "./poll.js";
import { kilnTags } from "./tags.js";

/** A machine image the build made, in one region. */
export interface MachineImage {
  id: string;
  name: string;
  region: string;
  snapshots: string[];
}

interface Naming {
  builder: AmazonEbsBuilderConfig;
  buildId: string;
  kilnVersion: string;
}

/**
 * Waits until an image (made or copied) is available, then tags its snapshots, whose ids are
 * known only then; a copy gets the image tags too (CopyImage tags nothing).
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
  }, { signal: ctx.signal, report: ctx.report, delaySeconds: builder.wait.delay_seconds, timeoutSeconds: builder.wait.timeout_seconds });
  const snapshots = (available.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => s !== undefined);
  const tag = (resources: string[], extra: Record<string, string>): Promise<unknown> => awsEventually(`tagging ${resources.join(", ")} (ec2:CreateTags)`,
    () => clients.ec2.send(new CreateTagsCommand({ Resources: resources, Tags: kilnTags(buildId, kilnVersion, extra) }), { abortSignal: ctx.signal }), ctx.signal);
  if (tagImage) await tag([id], builder.tags);
  if (snapshots.length > 0) await tag(snapshots, builder.snapshot_tags);
  return { id, name: builder.ami_name, region: clients.region, snapshots };
}
