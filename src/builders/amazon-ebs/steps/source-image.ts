import { DescribeImagesCommand, type DescribeImagesCommandInput, type Filter, type Image } from "@aws-sdk/client-ec2";
import { KilnError } from "../../../errors.js";
import type { Step } from "../../../pipeline/step.js";
import { aws, type AwsClients } from "../aws-clients.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import { windowsTarget, type WindowsTarget } from "../../../windows/launch-agent.js";
import type { AmazonEbsBuilderConfig } from "../../../template/schema.js";
import { openSshHashMissing } from "../user-data.js";

export interface SourceImage {
  id: string;
  name: string;
  created: string;
  owner: string;
  /** Where the image boots from (/dev/xvda): encrypt_boot encrypts that volume. */
  rootDevice?: string;
}

/** The image the build instance starts from: `source_ami`, or the newest match of a filter. */
export const sourceImage: Step<AmazonEbsBuildRequest & { aws: AwsClients }, { source: SourceImage; windows?: WindowsTarget }> = {
  name: "find source image",
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
    const chosen = newest(images);
    const source: SourceImage = { id: chosen.ImageId ?? "", name: chosen.Name ?? "", created: chosen.CreationDate ?? "", owner: chosen.OwnerId ?? "", ...(chosen.RootDeviceName === undefined ? {} : { rootDevice: chosen.RootDeviceName }) };
    const summary = `${source.id} (${source.name}, ${source.created}, owner ${source.owner})`;
    if (builder.platform !== "windows") return { output: { source }, summary };
    // Known before anything is created: which bootstrap and which sysprep this image needs.
    const windows = windowsTarget(builder.windows, source.name);
    if (openSshHashMissing(builder, windows)) {
      throw new KilnError("KILN_OPENSSH_HASH", `Windows Server ${windows.version} gets OpenSSH from the Win32-OpenSSH release zip, and windows.openssh_sha256 is not set`, {
        hint: `set windows.openssh_sha256 to the SHA-256 of OpenSSH-Win64.zip of ${builder.windows.openssh_version} (from its release page); kiln refuses a download that differs`,
      });
    }
    return { output: { source, windows }, summary: `${summary}; Windows Server ${windows.version}, ${windows.agent}` };
  },
};

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
