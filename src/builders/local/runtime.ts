import { stat } from "node:fs/promises";
import type { BuilderRuntime } from "../builder-kind.js";
import { diskOf, type LocalBuilderConfig } from "../../template/schema.js";
import { runBuild } from "../../pipeline/run-build.js";
import { localBuilder } from "./local-builder.js";

export const localRuntime: BuilderRuntime<LocalBuilderConfig> = {
  build: async ({ loaded, builder, buildId, kilnVersion, outputDirectory, options, run, report }) => {
    const state = await runBuild(localBuilder, {
      loaded, builder, buildId, kilnVersion, outputDirectory, cacheDirectory: options.cacheDirectory, workParent: options.workParent,
      ...(options.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: options.sourceDateEpoch }),
    }, run);
    const built = `built ${state.artifacts.map((a) => a.path).join(", ")} in ${report.elapsed().toFixed(1)}s`;
    const amazon = builder.publish?.amazon;
    if (amazon === undefined) return built;
    report.info(built);
    const raw = state.artifacts.find((a) => a.format === "raw");
    if (raw === undefined) throw new Error("the build wrote no raw disk to publish");
    // Loaded only to publish: a plain local build loads no AWS SDK.
    const { publishBuiltDisk, withProfile } = await import("../../publish/publish-built-disk.js");
    const published = await publishBuiltDisk({
      loaded, builder, amazon: withProfile(amazon, options.profile), buildId, kilnVersion, run, manifestPath: state.manifestPath,
      disk: await builtRaw(raw.path, await raw.digest.value()), audited: loaded.template.audit !== false,
    });
    return `published ${published.map((p) => `${p.image} in ${p.region}`).join(", ")} in ${report.elapsed().toFixed(1)}s`;
  },
  plan: async (loaded, builder, label) => {
    const amazon = builder.publish?.amazon;
    const local = {
      builder: label, type: "local", steps: localBuilder.plan({ loaded, builder }), lookups: ["none: the local builder calls no cloud"],
      cleanup: ["the work directory (the unpacked tree)", "the partial output (.partial-<build id>-…) if the build fails", "the build journal"],
      remains: [`output/${label}-<time>/disk.raw (${builder.image.formats.join(", ")}), manifest.json, audit.json`],
    };
    if (amazon === undefined) return local;
    const { publishPipeline } = await import("../../publish/publish-pipeline.js");
    const region = amazon.region ?? "(from AWS_REGION or the profile)";
    return {
      ...local,
      steps: [...local.steps, ...publishPipeline.plan({ amazon, region, boots: diskOf(builder).boot }).map((s) => ({ ...s, step: `publish: ${s.step}` }))],
      lookups: ["none: the plan of a publish makes no AWS call"],
      cleanup: [...local.cleanup, "publish, on failure only: the snapshot (a partial upload included) and the image and its copies; the built disk stays"],
      remains: [...local.remains, `image ${amazon.name} in ${region}${amazon.regions.length === 0 ? "" : ` and its copies in ${amazon.regions.join(", ")}`}, with its snapshot`],
    };
  },
};

/** The raw disk as the build left it: its size and the file itself (the upload checks it opens the same one). */
async function builtRaw(path: string, sha256: string): Promise<{ path: string; bytes: number; sha256: string; identity: { dev: number; ino: number } }> {
  const stats = await stat(path);
  return { path, bytes: stats.size, sha256, identity: { dev: stats.dev, ino: stats.ino } };
}
