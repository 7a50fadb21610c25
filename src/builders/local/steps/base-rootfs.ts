import { rename, rm, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { LocalFacts } from "../plan-facts.js";
import type { Step, StepContext } from "../../../pipeline/step.js";
import { exec } from "../../../system/exec.js";
import { ensureSafeDirectory, isOwnFile, makePrivateDirectory } from "../../../system/private-directory.js";
import { sha256File } from "../../../system/sha256.js";
import { baseSources } from "../apt-mirror.js";
import { baseKey, basePaths, readBaseRecord, writeBaseRecord, type BaseInputs } from "../base-cache.js";
import { megabytes } from "../../../report/format.js";
import { requestedEpoch, type LocalBuildRequest } from "../request.js";

/** The root filesystem a build starts from: a tarball (cached or given) or a directory. */
export interface BaseRootfs {
  kind: "tarball" | "directory";
  path: string;
  /** Identifies the base's content; recorded in the manifest and part of the image's identity. */
  key: string;
  /** When the base was built (mmdebstrap) or the epoch asked for; otherwise taken from the unpacked tree. */
  sourceDateEpoch: number | undefined;
  /** What went into it, for the manifest. */
  inputs: Readonly<Record<string, unknown>>;
}

export const baseRootfs: Step<LocalBuildRequest, { base: BaseRootfs }, LocalFacts> = {
  name: "base root filesystem",
  plan: ({ builder }) => ({
    calls: [], creates: [],
    note: builder.base.mmdebstrap !== undefined ? `mmdebstrap ${builder.base.mmdebstrap.suite} (${builder.base.mmdebstrap.variant}), cached by its inputs` : builder.base.tarball !== undefined ? `tarball ${builder.base.tarball}` : `directory ${builder.base.directory ?? ""}`,
  }),
  run: async (ctx, request) => {
    const { base } = request.builder;
    const epoch = requestedEpoch(request);
    if (base.tarball !== undefined) {
      const path = resolve(request.loaded.directory, base.tarball);
      const digest = await sha256File(path, ctx.signal);
      return {
        output: { base: { kind: "tarball", path, key: `sha256:${digest}`, sourceDateEpoch: epoch, inputs: { tarball: path } } },
        summary: `tarball ${path} (sha256 ${digest.slice(0, 12)}…)`,
      };
    }
    if (base.directory !== undefined) {
      const path = resolve(request.loaded.directory, base.directory);
      return {
        output: { base: { kind: "directory", path, key: `directory:${path}`, sourceDateEpoch: epoch, inputs: { directory: path } } },
        summary: `directory ${path}`,
      };
    }
    return fromMmdebstrap(ctx, request);
  },
};

async function fromMmdebstrap(ctx: StepContext, request: LocalBuildRequest): Promise<{ output: { base: BaseRootfs }; summary: string }> {
  const config = request.builder.base.mmdebstrap;
  if (config === undefined) throw new Error("base has no source");
  const inputs: BaseInputs = {
    suite: config.suite,
    variant: config.variant,
    packages: config.packages,
    components: config.components,
    sources: await baseSources(config.suite, config.components, config.mirror),
    architecture: config.architecture ?? (await exec("dpkg", ["--print-architecture"], { what: "dpkg" })).stdout.trim(),
  };
  const key = baseKey(inputs, requestedEpoch(request));
  // The cache holds what every build unpacks as root: it must be ours (or root's) as much as the work directory.
  // Its bases/ directory and each entry are checked too: in a shared cache another user could
  // have made bases/ (or planted a tarball in it) before kiln first did.
  const paths = basePaths(await ensureSafeDirectory(request.cacheDirectory), key);
  await ensureSafeDirectory(dirname(paths.tarball));
  const cached = (await isOwnFile(paths.record)) ? await readBaseRecord(paths.record) : undefined;
  if (cached !== undefined && (await isOwnFile(paths.tarball))) {
    return {
      output: { base: { kind: "tarball", path: paths.tarball, key, sourceDateEpoch: cached.sourceDateEpoch, inputs: { ...inputs } } },
      summary: `cached ${key} (${megabytes(cached.bytes)})`,
    };
  }

  const sourceDateEpoch = requestedEpoch(request) ?? Math.floor(Date.now() / 1000);
  // Written in a private directory beside the cache entry and renamed, so a killed build never
  // leaves a truncated base in the cache and no one can plant a link at a predictable name.
  const partialDirectory = await makePrivateDirectory(dirname(paths.tarball), ".partial");
  const partial = join(partialDirectory, "base.tar");
  const discardPartial = ctx.cleanup.defer(`remove partial base ${partialDirectory}`, () => rm(partialDirectory, { recursive: true, force: true }));
  // mmdebstrap keeps its temporary tree here, so a cancelled build can remove what it leaves.
  const scratch = await makePrivateDirectory(request.workParent, `${request.buildId}-mmdebstrap`);
  ctx.cleanup.defer(`remove mmdebstrap's scratch directory ${scratch}`, () => rm(scratch, { recursive: true, force: true }));
  ctx.report.info(`building ${inputs.suite}/${inputs.variant} from ${inputs.sources.map((s) => s.split(" ").slice(1, 3).join(" ")).join(", ")}${inputs.packages.length > 0 ? ` with ${inputs.packages.join(", ")}` : ""}`);
  await exec("mmdebstrap", [
    `--variant=${inputs.variant}`,
    `--architectures=${inputs.architecture}`,
    `--components=${inputs.components.join(",")}`,
    ...(inputs.packages.length > 0 ? [`--include=${inputs.packages.join(",")}`] : []),
    "--mode=root",
    "--format=tar",
    // Values after "--", so a suite or mirror line starting with a dash is never read as an option.
    "--", inputs.suite, partial, ...inputs.sources,
  ], {
    what: "building the base root filesystem (mmdebstrap)",
    signal: ctx.signal,
    env: { ...process.env, SOURCE_DATE_EPOCH: String(sourceDateEpoch), TMPDIR: scratch },
    // mmdebstrap removes its temporary tree when told to stop; give it the time to.
    killGraceMs: 30_000,
    // Its progress lines; a failed command can fill a screen, so long lines are shortened here (the error keeps them whole).
    onStderrLine: (line) => { if (/^[IWE]: /.test(line)) ctx.report.output("mmdebstrap", line.length > 240 ? `${line.slice(0, 240)}…` : line); },
    hint: "check the suite, packages and mirror under builders.*.base.mmdebstrap, and that the mirror is reachable",
    tailLines: 30,
  });
  const bytes = (await stat(partial)).size;
  await rename(partial, paths.tarball);
  await discardPartial(ctx.signal);
  await writeBaseRecord(paths.record, { key, inputs, sourceDateEpoch, createdAt: new Date().toISOString(), bytes });
  return {
    output: { base: { kind: "tarball", path: paths.tarball, key, sourceDateEpoch, inputs: { ...inputs } } },
    summary: `built ${key} (${megabytes(bytes)}), cached in ${request.cacheDirectory}`,
  };
}
