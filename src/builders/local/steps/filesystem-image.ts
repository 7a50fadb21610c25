import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeExt4Image } from "../../../image/ext4-image.js";
import { imageBytes } from "../../../image/size.js";
import { clampTimesAndMeasure } from "../../../image/tree-times.js";
import type { LocalFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { sha256Text } from "../../../system/sha256.js";
import type { LocalBuildRequest } from "../request.js";
import type { BaseRootfs } from "./base-rootfs.js";
import { megabytes } from "../../../report/format.js";
import type { WorkTree } from "./unpack-base.js";

export interface DiskImage {
  path: string;
  bytes: number;
  filesystemUuid: string;
  sourceDateEpoch: number;
}

/** Writes the cleaned tree as a fresh ext4 filesystem into `disk.raw` in a new output directory. */
export const filesystemImage: Step<LocalBuildRequest & { base: BaseRootfs; tree: WorkTree }, { disk: DiskImage }, LocalFacts> = {
  name: "write filesystem image",
  plan: ({ builder }) => ({ calls: [], creates: [{ type: "disk image", name: `disk.raw (ext4, size ${String(builder.image.size)})` }] }),
  run: async (ctx, request) => {
    const { tree, builder, outputDirectory } = request;
    const epoch = tree.sourceDateEpoch;
    const usage = await clampTimesAndMeasure(tree.root.root, epoch);
    const bytes = imageBytes(builder.image.size, usage);
    const uuid = inputsUuid(request);

    // A directory of its own, created new: the artifact is never written over an older file.
    await mkdir(join(outputDirectory, ".."), { recursive: true });
    await mkdir(outputDirectory);
    ctx.cleanup.deferOnFailure(`remove unfinished output ${outputDirectory}`, () => rm(outputDirectory, { recursive: true, force: true }));

    const path = join(outputDirectory, "disk.raw");
    await writeExt4Image({
      root: tree.root.root, file: path, bytes, label: builder.image.label, uuid, epoch,
      minimumInodes: Math.ceil(usage.entries * 1.25) + 1024, signal: ctx.signal, owner: tree.root.owner,
    });
    return {
      output: { disk: { path, bytes, filesystemUuid: uuid, sourceDateEpoch: epoch } },
      summary: `${path} (${megabytes(bytes)} ext4, ${megabytes(usage.bytes)} used, uuid ${uuid})`,
    };
  },
};

/**
 * A UUID that is the same for the same base, template and variables, so identical inputs give
 * identical bytes. It is published with the image, so sensitive values stay out of it: the
 * template text is hashed before expressions are evaluated.
 */
function inputsUuid({ base, builder, loaded }: LocalBuildRequest & { base: BaseRootfs }): string {
  const variables = [...loaded.variables].filter(([, v]) => !v.sensitive).map(([name, v]) => [name, v.value]);
  const builderIndex = loaded.template.builders.indexOf(builder);
  const hex = sha256Text(JSON.stringify({ base: base.key, template: loaded.sourceText, variables, builderIndex })).slice(0, 32).split("");
  hex[12] = "5";
  hex[16] = ((parseInt(hex[16] ?? "0", 16) & 0x3) | 0x8).toString(16);
  const h = hex.join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
