import { writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import type { LocalFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { installedPackages } from "../installed-packages.js";
import type { LocalBuildRequest } from "../request.js";
import type { BaseRootfs } from "./base-rootfs.js";
import type { TestSummary } from "./test-image.js";
import type { AuditSummary } from "./audit-artifact.js";
import { artifactBytes, type Artifact } from "./convert-image.js";
import type { DiskImage } from "./filesystem-image.js";
import type { WorkTree } from "./unpack-base.js";

type ManifestInput = LocalBuildRequest & { base: BaseRootfs; tree: WorkTree; disk: DiskImage; artifacts: Artifact[]; cleaned: string[]; audit: AuditSummary; test: TestSummary; toolVersions: () => Promise<Record<string, string | undefined>> };

/** `manifest.json` beside the artifacts: what went in, what came out, and their checksums. */
export const writeManifest: Step<ManifestInput, { manifestPath: string }, LocalFacts> = {
  name: "write manifest",
  plan: () => ({ calls: [], creates: [{ type: "manifest", name: "manifest.json" }] }),
  run: async (ctx, input) => {
    const { loaded, builder, outputDirectory, base, tree, disk, artifacts } = input;
    const packages = await installedPackages(tree.root.root);
    const files = [];
    for (const artifact of artifacts) {
      const sha256 = await artifact.digest.value();
      files.push({ format: artifact.format, path: relative(outputDirectory, artifact.path), bytes: await artifactBytes(artifact), sha256 });
    }
    const manifest = {
      kiln: { version: input.kilnVersion },
      // The tools whose versions decide the image's bytes.
      tools: await input.toolVersions(),
      build: { id: input.buildId, startedAt: loaded.startedAt.toISOString(), finishedAt: new Date().toISOString(), seconds: ctx.report.elapsed() },
      template: { file: loaded.file, name: loaded.template.name },
      builder: { type: builder.type, ...(builder.name === undefined ? {} : { name: builder.name }) },
      inputs: {
        base: { key: base.key, ...base.inputs },
        sourceDateEpoch: disk.sourceDateEpoch,
        filesystemUuid: disk.filesystemUuid,
        provisioners: loaded.template.provisioners.map((p) => p.type),
        packages: packages.map((p) => `${p.name}=${p.version}`),
      },
      // How the disk boots and who logs in: what `kiln test` and a user booting it need to know.
      disk: disk.layout === undefined ? { partitions: "none" } : {
        partitions: "gpt",
        diskGuid: disk.layout.diskGuid,
        layout: disk.layout.partitions.map((p) => ({ number: p.number, name: p.name, type: p.type, guid: p.guid, offset: p.offset, bytes: p.bytes })),
        ...(disk.boot === undefined ? { boot: [] } : { boot: disk.boot.firmware, kernel: disk.boot.kernelVersion }),
      },
      login: { user: loaded.template.harden === false ? "root" : loaded.template.harden.default_user ?? "root" },
      clean: input.cleaned,
      audit: input.audit.reportPath === undefined ? { skipped: true } : { report: relative(outputDirectory, input.audit.reportPath), findings: input.audit.findings },
      test: input.test.reportPath === undefined ? { skipped: true } : { report: relative(outputDirectory, input.test.reportPath), passed: input.test.passed },
      artifacts: files,
    };
    const manifestPath = join(outputDirectory, "manifest.json");
    // Through the redactor like every other output: a mirror URL or path can carry a secret.
    const redact = (_key: string, value: unknown): unknown => (typeof value === "string" ? ctx.report.redactor.redact(value) : value);
    await writeFile(manifestPath, `${JSON.stringify(manifest, redact, 2)}\n`);
    const raw = files.find((f) => f.format === "raw");
    return { output: { manifestPath }, summary: `${manifestPath}${raw === undefined ? "" : ` (disk.raw sha256 ${raw.sha256})`}` };
  },
};
