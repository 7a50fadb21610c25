import { resolve } from "node:path";
import { loadBaseline } from "../audit/judging/baseline.js";
import type { Baseline } from "../audit/judging/baseline.js";
import type { LoadedTemplate } from "../template/load.js";
import { diskOf, type AmazonPublishConfig, type LocalBuilderConfig } from "../template/schema.js";
import { runBuild, type RunBuildOptions } from "../pipeline/run-build.js";
import { publishPipeline } from "./publish-pipeline.js";
import type { PublishedImage } from "./steps/share-published.js";
import type { PublishRequest } from "./steps/publish-request.js";

/** The template's audit settings as the gate takes them: its fail_on and baseline, else high and none. */
export async function gateSettings(loaded: LoadedTemplate, acceptFindings?: string): Promise<{ failOn: PublishRequest["gate"]["failOn"]; baseline?: Baseline | undefined }> {
  const audit = loaded.template.audit;
  const file = acceptFindings ?? (audit === false || audit.baseline === undefined ? undefined : resolve(loaded.directory, audit.baseline));
  return { failOn: audit === false ? "high" : audit.fail_on, ...(file === undefined ? {} : { baseline: await loadBaseline(file) }) };
}

/** The amazon settings with the command line's profile over the template's. */
export function withProfile(amazon: AmazonPublishConfig, profile: string | undefined): AmazonPublishConfig {
  return profile === undefined ? amazon : { ...amazon, profile };
}

/**
 * A local build's publish, once its output is in place: the raw disk it wrote, audited by the
 * build itself (the same file, the same sha256), uploaded and registered. A failure leaves the
 * built disk where it is: `kiln publish` takes it again once the cause is fixed.
 */
export async function publishBuiltDisk(args: {
  loaded: LoadedTemplate; builder: LocalBuilderConfig; amazon: AmazonPublishConfig; buildId: string; kilnVersion: string; run: RunBuildOptions;
  disk: { path: string; bytes: number; sha256: string; identity: { dev: number; ino: number } }; audited: boolean; manifestPath: string;
}): Promise<PublishedImage[]> {
  const gate = await gateSettings(args.loaded);
  const request: PublishRequest = {
    amazon: args.amazon, buildId: args.buildId, kilnVersion: args.kilnVersion, manifestPath: args.manifestPath,
    disk: { ...args.disk, boots: diskOf(args.builder).boot },
    gate: { ...gate, ...(args.audited ? { auditedSha256: args.disk.sha256 } : {}) },
  };
  try {
    return (await runBuild(publishPipeline, request, args.run)).published;
  } catch (error) {
    args.run.report.warn(`the disk is built and kept: ${args.disk.path}; once the cause is fixed, publish it with: kiln publish ${args.disk.path} --template ${args.loaded.file}`);
    throw error;
  }
}
