import { DescribeImagesCommand, type BlockDeviceMapping, type DescribeImagesCommandInput, type Filter, type Image } from "@aws-sdk/client-ec2";
import { KilnError } from "../../../errors.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { regionalClients, type AwsClients } from "../aws-clients.js";
import { aws } from "../aws-errors.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import { windowsTarget, type WindowsTarget } from "../../../windows/launch-agent.js";
import type { AmazonEbsBuilderConfig } from "../../../template/schema.js";
import { openSshHashMissing } from "../user-data.js";
import { sysprepShutsDown } from "../../../windows/generalize.js";

export interface SourceImage {
  id: string;
  name: string;
  created: string;
  owner: string;
  /** Its EBS volumes as it maps them: encrypt_boot encrypts every one at launch. */
  volumes: BlockDeviceMapping[];
}

/** The image the build instance starts from: `source_ami`, or the newest match of a filter. */
export const sourceImage: Step<AmazonEbsBuildRequest & { aws: AwsClients }, { source: SourceImage; windows?: WindowsTarget }, AmazonEbsFacts> = {
  name: "find source image",
  plan: ({ builder, source, windows, imageName }) => ({
    calls: ["ec2:DescribeImages (read-only): the source image", `ec2:DescribeImages (read-only): "${builder.ami_name}" free in ${[builder.region ?? "the build region", ...builder.ami_regions].join(", ")}`],
    creates: [], note: `${source}${windows === undefined ? "" : `; ${windows}`}; ${imageName}`,
  }),
  run: async (ctx, { builder, aws: clients }) => {
    const filter = builder.source_ami_filter;
    const found = await aws("looking up the source image (ec2:DescribeImages)", () => clients.ec2.send(new DescribeImagesCommand(sourceImageQuery(builder)), { abortSignal: ctx.signal }), ctx.signal);
    const images = (found.Images ?? []).filter((i) => i.ImageId !== undefined);
    const described = filter === undefined ? `source_ami ${builder.source_ami ?? ""}` : `source_ami_filter (owners ${filter.owners.join(", ")}; ${Object.entries(filter.filters).map(([k, v]) => `${k}=${String(v)}`).join(", ")})`;
    if (images.length === 0) {
      throw new KilnError("KILN_SOURCE_IMAGE_NOT_FOUND", `no image matches ${described} in ${clients.region}`, {
        hint: "check the filter's name pattern, the owners and the region (aws ec2 describe-images with the same filter shows what exists)",
      });
    }
    if (images.length > 1 && filter !== undefined && !filter.most_recent) {
      throw new KilnError("KILN_SOURCE_IMAGE_AMBIGUOUS", `${images.length} images match ${described}: ${images.slice(0, 3).map((i) => i.ImageId).join(", ")}${images.length > 3 ? ", …" : ""}`, {
        hint: "narrow the filter, or set most_recent: true to take the newest",
      });
    }
    const taken = await imageNameTaken(builder, clients, ctx.signal);
    if (taken !== undefined) {
      throw new KilnError("KILN_IMAGE_NAME_TAKEN", taken, { hint: "choose another ami_name (e.g. with ${{ timestamp }} or {{timestamp}} in it), or deregister that image" });
    }
    const chosen = newest(images);
    const source: SourceImage = {
      id: chosen.ImageId ?? "", name: chosen.Name ?? "", created: chosen.CreationDate ?? "", owner: chosen.OwnerId ?? "",
      volumes: (chosen.BlockDeviceMappings ?? []).filter((m) => m.Ebs !== undefined && m.DeviceName !== undefined),
    };
    const summary = `${source.id} (${source.name}, ${source.created}, owner ${source.owner})`;
    if (builder.platform !== "windows") return { output: { source }, summary };
    // Known before anything is created: which bootstrap and which sysprep this image needs.
    const windows = windowsTarget(builder.windows, source.name);
    if (openSshHashMissing(builder, windows)) {
      throw new KilnError("KILN_OPENSSH_HASH", `Windows Server ${windows.version} gets OpenSSH from the Win32-OpenSSH release zip, and windows.openssh_sha256 is not set`, {
        hint: `set windows.openssh_sha256 to the SHA-256 of OpenSSH-Win64.zip of ${builder.windows.openssh_version} (from its release page); kiln refuses a download that differs`,
      });
    }
    // EC2Config's sysprep shuts Windows down, and a spot instance that shuts down is gone, image and all.
    if (builder.spot_price !== undefined && builder.communicator === "ssh" && builder.windows.generalize && sysprepShutsDown(windows.agent)) {
      throw new KilnError("KILN_SPOT_SYSPREP", `${windows.agent}'s sysprep shuts the instance down, and a spot instance that shuts down ends before it can be imaged`, {
        hint: "build this image on demand (remove spot_price), or set windows.generalize: false and sysprep in your own provisioner without shutting down",
      });
    }
    return { output: { source, windows }, summary: `${summary}; Windows Server ${windows.version}, ${windows.agent}` };
  },
};

/**
 * Whether this account already has an image of the AMI's name in the build region or a copy
 * region (EC2 refuses a second one with InvalidAMIName.Duplicate only at CreateImage or CopyImage,
 * after the instance was launched and provisioned): a sentence naming it, or undefined.
 */
export async function imageNameTaken(builder: Pick<AmazonEbsBuilderConfig, "ami_regions" | "ami_name" | "profile">, clients: AwsClients, signal: AbortSignal): Promise<string | undefined> {
  const regions = [...new Set([clients.region, ...builder.ami_regions])];
  for (const region of regions) {
    const regional = region === clients.region ? clients : regionalClients(builder, region);
    const found = await aws(`checking that the image name is free in ${region} (ec2:DescribeImages)`, () => regional.ec2.send(new DescribeImagesCommand({
      Owners: ["self"], Filters: [{ Name: "name", Values: [builder.ami_name] }], IncludeDisabled: true,
    }), { abortSignal: signal }), signal);
    // A just-deregistered image is still listed for a while, and no longer holds its name.
    const image = found.Images?.find((i) => i.State !== "deregistered");
    if (image !== undefined) return `an image named "${builder.ami_name}" exists already in ${region}: ${image.ImageId ?? "?"}${image.State === undefined ? "" : ` (${image.State})`}`;
  }
  return undefined;
}

function toFilters(filters: Record<string, string | string[]>): Filter[] {
  return Object.entries(filters).map(([Name, value]) => ({ Name, Values: Array.isArray(value) ? value : [value] }));
}

/** The DescribeImages request for the template's `source_ami` or `source_ami_filter`. */
export function sourceImageQuery(builder: Pick<AmazonEbsBuilderConfig, "source_ami" | "source_ami_filter">): DescribeImagesCommandInput {
  const filter = builder.source_ami_filter;
  return filter === undefined ? { ImageIds: [builder.source_ami ?? ""] } : { Owners: filter.owners, Filters: toFilters(filter.filters) };
}

/** Newest by creation date; ties broken by id, so the same images always give the same choice. */
export function newest(images: Image[]): Image {
  return [...images].sort((a, b) => (b.CreationDate ?? "").localeCompare(a.CreationDate ?? "") || (b.ImageId ?? "").localeCompare(a.ImageId ?? ""))[0] as Image;
}
