import type { BuilderRuntime } from "../builder-kind.js";
import type { LocalBuilderConfig } from "../../template/schema.js";
import { runBuild } from "../../pipeline/run-build.js";
import { localBuilder } from "./local-builder.js";

export const localRuntime: BuilderRuntime<LocalBuilderConfig> = {
  build: async ({ loaded, builder, buildId, kilnVersion, outputDirectory, options, run, report }) => {
    const state = await runBuild(localBuilder, {
      loaded, builder, buildId, kilnVersion, outputDirectory, cacheDirectory: options.cacheDirectory, workParent: options.workParent,
      ...(options.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: options.sourceDateEpoch }),
    }, run);
    return `built ${state.artifacts.map((a) => a.path).join(", ")} in ${report.elapsed().toFixed(1)}s`;
  },
  plan: (loaded, builder, label) => Promise.resolve({
    builder: label, type: "local", steps: localBuilder.plan({ loaded, builder }), lookups: ["none: the local builder calls no cloud"],
    cleanup: ["the work directory (the unpacked tree)", "the partial output (.partial-<build id>-…) if the build fails", "the build journal"],
    remains: [`output/${label}-<time>/disk.raw (${builder.image.formats.join(", ")}), manifest.json, audit.json`],
  }),
};
