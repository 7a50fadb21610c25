import { CreateImageCommand, DescribeImagesCommand } from "@aws-sdk/client-ec2";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { KilnError } from "../../../errors.js";
import { trackSnapshots } from "../snapshot-tracking.js";
import type { AwsClients } from "../aws-clients.js";
import { imageAvailable, type MachineImage } from "../image-state.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildJournal } from "../journal.js";
import { kilnTags, tagOnCreate } from "../tags.js";
import { createResource, ownedBy, track } from "../tracked-resource.js";
import type { BuildInstance } from "./launch-instance.js";

export type { MachineImage };

/** encrypt_boot promises an image whose every snapshot is encrypted: one that is not fails the build (and its undo removes the image). */
export function refuseUnencrypted(image: MachineImage): void {
  if (image.unencrypted.length === 0) return;
  throw new KilnError("KILN_ENCRYPTION", `image ${image.id} in ${image.region} has unencrypted snapshots: ${image.unencrypted.join(", ")}, and encrypt_boot is set`, {
    hint: "a volume attached during the build, or an endpoint that ignored the encryption: list every volume in launch_block_device_mappings",
  });
}

/**
 * The artifact. If the build fails after CreateImage, the undo deregisters the image and
 * deletes its snapshots: a half-made image is not left to be launched. Snapshots are tagged
 * once the image is available (their ids are known only then).
 */
export const createImage: Step<AmazonEbsBuildRequest & { aws: AwsClients; journal: BuildJournal; instance: BuildInstance }, { image: MachineImage }, AmazonEbsFacts> = {
  name: "create image",
  plan: ({ builder, tags }) => ({
    calls: ["ec2:CreateImage", "ec2:DescribeImages (read-only, until available)", "ec2:CreateTags (snapshots)", ...(builder.imds_support === undefined ? [] : ["ec2:ModifyImageAttribute (ImdsSupport v2.0)"])],
    creates: [{ type: "image", name: builder.ami_name, tags: tags(builder.tags) }, { type: "snapshots", name: "of the image's volumes", tags: tags(builder.snapshot_tags) }],
  }),
  run: async (ctx, input) => {
    const { builder, aws: clients, instance, buildId, kilnVersion } = input;
    const created = await createResource<{ ImageId?: string | undefined }>("creating the image (ec2:CreateImage)", (signal) => clients.ec2.send(new CreateImageCommand({
      InstanceId: instance.id, Name: builder.ami_name,
      ...(builder.ami_description === undefined ? {} : { Description: builder.ami_description }),
      TagSpecifications: tagOnCreate(["image"], kilnTags(buildId, kilnVersion, builder.tags)),
    }), { abortSignal: signal }), {
      duplicate: "InvalidAMIName.Duplicate",
      findOurs: async () => {
        const found = (await clients.ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "name", Values: [builder.ami_name] }] }))).Images?.[0];
        return found !== undefined && ownedBy(buildId, found.Tags) ? { ImageId: found.ImageId } : undefined;
      },
    });
    const id = created.ImageId ?? "";
    await track(ctx, input, { type: "image", id, temporary: false }, `deregister image ${id} and delete its snapshots`);
    const image = await imageAvailable(ctx, clients, id, input, false);
    // Journaled on their own: a killed build's snapshots are found even once the image is gone.
    await trackSnapshots(ctx, input, image);
    if (builder.encrypt_boot) refuseUnencrypted(image);
    return { output: { image }, summary: `${id} "${builder.ami_name}" available (snapshots ${image.snapshots.join(", ") || "none"})` };
  },
};
