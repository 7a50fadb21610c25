import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import type { BuildJournal } from "../journal.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { MachineImage } from "./create-image.js";
import type { SourceImage } from "./source-image.js";

/** `manifest.json`: region → image id, snapshots, the source image and the build id. */
export const writeManifest: Step<AmazonEbsBuildRequest & { account: string; journal: BuildJournal; source: SourceImage; image: MachineImage; copies: MachineImage[] }, { manifestPath: string }, AmazonEbsFacts> = {
  name: "write manifest",
  plan: () => ({ calls: [], creates: [], note: "manifest.json in the output directory" }),
  run: async (ctx, { loaded, builder, outputDirectory, buildId, kilnVersion, account, source, image, copies, journal }) => {
    await mkdir(outputDirectory, { recursive: true });
    ctx.cleanup.deferOnFailure(`remove unfinished output ${outputDirectory}`, () => rm(outputDirectory, { recursive: true, force: true }));
    const manifest = {
      kiln: { version: kilnVersion },
      build: { id: buildId, startedAt: loaded.startedAt.toISOString(), finishedAt: new Date().toISOString(), seconds: ctx.report.elapsed() },
      template: { file: loaded.file, name: loaded.template.name },
      builder: { type: builder.type, ...(builder.name === undefined ? {} : { name: builder.name }) },
      account,
      source: { image: source.id, name: source.name, owner: source.owner },
      artifacts: [image, ...copies].map((i) => ({ region: i.region, image: i.id, name: i.name, snapshots: i.snapshots })),
      sharedWith: { accounts: builder.ami_users, public: builder.public && builder.ami_groups.includes("all") },
    };
    const manifestPath = join(outputDirectory, "manifest.json");
    const redact = (_key: string, value: unknown): unknown => (typeof value === "string" ? ctx.report.redactor.redact(value) : value);
    await writeFile(manifestPath, `${JSON.stringify(manifest, redact, 2)}\n`);
    // From here the image is the build's product, not a leftover for `kiln cleanup`.
    await journal.kept();
    return { output: { manifestPath }, summary: manifestPath };
  },
};
