import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeExt4Image } from "../../../image/ext4-image.js";
import { gptLayout, type DiskLayout } from "../../../image/disk-layout.js";
import { writeGptDisk } from "../../../image/gpt-disk.js";
import { parseSize } from "../../../image/size.js";
import { diskOf } from "../../../template/schema.js";
import type { BootPlan } from "./prepare-boot.js";
import { imageBytes } from "../../../image/size.js";
import { clampTimesAndMeasure } from "../../../image/tree-times.js";
import type { LocalFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { sha256Text, startSha256, type PendingDigest } from "../../../system/sha256.js";
import type { LocalBuildRequest } from "../request.js";
import type { BaseRootfs } from "./base-rootfs.js";
import { megabytes } from "../../../report/format.js";
import type { WorkTree } from "./unpack-base.js";
import { partialOutputPrefix } from "../local-journal.js";

/** Where the build writes its image, audit report and manifest until they are published to `destination`. */
export interface PartialOutput {
  directory: string;
  destination: string;
}

export interface DiskImage {
  /** Its sha256, computed while later steps audit and convert it. */
  digest: PendingDigest;
  path: string;
  bytes: number;
  filesystemUuid: string;
  sourceDateEpoch: number;
  /** The partitions, for a GPT disk; absent for a bare filesystem. */
  layout?: DiskLayout;
  /** What boots it, when something does. */
  boot?: { firmware: readonly ("bios" | "uefi")[]; kernelVersion: string };
}

/**
 * Writes the cleaned tree as a fresh ext4 filesystem into `disk.raw` in a new partial output
 * directory: the bare filesystem, or the root partition of a GPT disk with its boot loaders.
 */
export const filesystemImage: Step<LocalBuildRequest & { base: BaseRootfs; tree: WorkTree; boot?: BootPlan }, { disk: DiskImage; outputDirectory: string; partialOutput: PartialOutput }, LocalFacts> = {
  name: "write disk image",
  plan: ({ builder }) => {
    const disk = diskOf(builder);
    const what = disk.partitions === "none" ? "ext4" : `GPT: ${disk.boot.length === 0 ? "" : `${disk.boot.join(" + ")} boot, `}ext4 root`;
    return { calls: [], creates: [{ type: "disk image", name: `disk.raw (${what}, size ${String(builder.image.size)}), in .partial-<build id>-… until published` }] };
  },
  run: async (ctx, request) => {
    const { tree, builder, outputDirectory, boot } = request;
    const epoch = tree.sourceDateEpoch;
    const usage = await clampTimesAndMeasure(tree.root.root, epoch);
    const uuid = inputsUuid(request);
    // For a disk, image.size is the disk's size and the root partition takes what the others leave.
    const layout = boot === undefined ? undefined : gptLayout(builder.image.size === "auto"
      ? { rootBytes: imageBytes("auto", usage), boot: boot.disk.boot, seed: boot.seed }
      : { diskBytes: parseSize(builder.image.size), boot: boot.disk.boot, seed: boot.seed });
    const bytes = layout?.root.bytes ?? imageBytes(builder.image.size, usage);

    // A directory of its own, created new (the artifact is never written over an older file), under a
    // name that says it is unfinished: it becomes the output directory only once the audit passed.
    const partial = await makePartialOutput(outputDirectory, request.buildId);
    ctx.cleanup.deferOnFailure(`remove partial output ${partial}`, () => rm(partial, { recursive: true, force: true }), { keepOnAbort: true });

    const path = join(partial, "disk.raw");
    const root = {
      root: tree.root.root, label: builder.image.label, uuid, epoch,
      minimumInodes: Math.ceil(usage.entries * 1.25) + 1024, signal: ctx.signal, owner: tree.root.owner,
    };
    if (layout === undefined) await writeExt4Image({ ...root, file: path, bytes });
    else await writeGptDisk({ file: path, layout, root, kernel: boot?.kernel, kernelArgs: boot?.disk.kernel_args ?? [] });
    const image: DiskImage = { path, bytes: layout?.bytes ?? bytes, filesystemUuid: uuid, sourceDateEpoch: epoch, digest: startSha256(path, ctx.signal) };
    if (layout !== undefined) image.layout = layout;
    if (boot?.kernel !== undefined) image.boot = { firmware: boot.disk.boot, kernelVersion: boot.kernel.version };
    const what = layout === undefined ? "ext4" : `GPT disk, ${layout.partitions.map((p) => `${p.number} ${p.name}`).join(", ")}${image.boot === undefined ? "" : `; boots by ${image.boot.firmware.join(" and ")}`}`;
    return {
      // From here on every step writes its files into the partial output; publishing renames it.
      output: { disk: image, outputDirectory: partial, partialOutput: { directory: partial, destination: outputDirectory } },
      summary: `${path} (${megabytes(image.bytes)} ${what}; ${megabytes(usage.bytes)} used, filesystem uuid ${uuid})`,
    };
  },
};

/**
 * `.partial-<build id>-XXXXXX` beside the output directory (on its filesystem, so publishing is
 * one rename), 0700 until then, and named by the build's journal before it exists.
 */
async function makePartialOutput(outputDirectory: string, buildId: string): Promise<string> {
  const parent = dirname(outputDirectory);
  await mkdir(parent, { recursive: true });
  return mkdtemp(join(parent, `${partialOutputPrefix(buildId)}-`));
}

/**
 * A UUID that is the same for the same base, template and variables, so identical inputs give
 * identical bytes. It is published with the image, so sensitive values stay out of it: the
 * template text is hashed before expressions are evaluated.
 */
export function inputsUuid({ base, builder, loaded }: LocalBuildRequest & { base: BaseRootfs }): string {
  const variables = [...loaded.variables].filter(([, v]) => !v.sensitive).map(([name, v]) => [name, v.value]);
  const builderIndex = loaded.template.builders.indexOf(builder);
  const hex = sha256Text(JSON.stringify({ base: base.key, template: loaded.sourceText, variables, builderIndex })).slice(0, 32).split("");
  hex[12] = "5";
  hex[16] = ((parseInt(hex[16] ?? "0", 16) & 0x3) | 0x8).toString(16);
  const h = hex.join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
