import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeExt4Image } from "../../../image/ext4-image.js";
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
}

/** Writes the cleaned tree as a fresh ext4 filesystem into `disk.raw` in a new partial output directory. */
export const filesystemImage: Step<LocalBuildRequest & { base: BaseRootfs; tree: WorkTree }, { disk: DiskImage; outputDirectory: string; partialOutput: PartialOutput }, LocalFacts> = {
  name: "write filesystem image",
  plan: ({ builder }) => ({ calls: [], creates: [{ type: "disk image", name: `disk.raw (ext4, size ${String(builder.image.size)}), in .partial-<build id>-… until published` }] }),
  run: async (ctx, request) => {
    const { tree, builder, outputDirectory } = request;
    const epoch = tree.sourceDateEpoch;
    const usage = await clampTimesAndMeasure(tree.root.root, epoch);
    const bytes = imageBytes(builder.image.size, usage);
    const uuid = inputsUuid(request);

    // A directory of its own, created new (the artifact is never written over an older file), under a
    // name that says it is unfinished: it becomes the output directory only once the audit passed.
    const partial = await makePartialOutput(outputDirectory, request.buildId);
    ctx.cleanup.deferOnFailure(`remove partial output ${partial}`, () => rm(partial, { recursive: true, force: true }), { keepOnAbort: true });

    const path = join(partial, "disk.raw");
    await writeExt4Image({
      root: tree.root.root, file: path, bytes, label: builder.image.label, uuid, epoch,
      minimumInodes: Math.ceil(usage.entries * 1.25) + 1024, signal: ctx.signal, owner: tree.root.owner,
    });
    return {
      // From here on every step writes its files into the partial output; publishing renames it.
      output: { disk: { path, bytes, filesystemUuid: uuid, sourceDateEpoch: epoch, digest: startSha256(path, ctx.signal) }, outputDirectory: partial, partialOutput: { directory: partial, destination: outputDirectory } },
      summary: `${path} (${megabytes(bytes)} ext4, ${megabytes(usage.bytes)} used, uuid ${uuid})`,
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
function inputsUuid({ base, builder, loaded }: LocalBuildRequest & { base: BaseRootfs }): string {
  const variables = [...loaded.variables].filter(([, v]) => !v.sensitive).map(([name, v]) => [name, v.value]);
  const builderIndex = loaded.template.builders.indexOf(builder);
  const hex = sha256Text(JSON.stringify({ base: base.key, template: loaded.sourceText, variables, builderIndex })).slice(0, 32).split("");
  hex[12] = "5";
  hex[16] = ((parseInt(hex[16] ?? "0", 16) & 0x3) | 0x8).toString(16);
  const h = hex.join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
