import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { Option, type Command } from "commander";
import { defaultCacheDirectory } from "../../builders/local/base-cache.js";
import type { BuildOptions as BuilderBuildOptions } from "../../builders/builder-kind.js";
import { builderKind } from "../../builders/registry.js";
import { ExitStatus, UsageError } from "../../errors.js";
import type { OnError } from "../../pipeline/run-build.js";
import { kilnVersion } from "../../version.js";
import { builderLabel } from "../../template/schema.js";
import { listenForInterrupts } from "../interrupts.js";
import { rebuildRootless } from "../rootless.js";
import type { CliContext } from "../io.js";
import { printPlan } from "./plan.js";
import { loadFromCli, reporterFor, withTemplateOptions, type TemplateOptions } from "../shared-options.js";

interface BuildOptions extends TemplateOptions {
  onError: OnError;
  cleanupTimeout: string;
  cacheDir?: string;
  workDir?: string;
  outputDir?: string;
  debugKeys?: string;
  profile?: string;
  showPassword?: boolean;
  plan?: boolean;
}

export function buildCommand(program: Command, { io, redactor, json }: CliContext): void {
  withTemplateOptions(program.command("build").argument("<template>", "template file (YAML or JSON)"))
    .description("build the images a template describes")
    .addOption(new Option("--on-error <mode>", "on failure: cleanup (undo everything) or abort (keep the work directory to debug)").choices(["cleanup", "abort"]).default("cleanup"))
    .option("--cleanup-timeout <seconds>", "deadline of each cleanup action", "120")
    .option("--cache-dir <dir>", "where base root filesystems are cached (default: $KILN_CACHE_DIR or ~/.cache/kiln)")
    .option("--work-dir <dir>", "where work directories are created (default: $KILN_WORK_DIR or /var/tmp/kiln)")
    .option("--output-dir <dir>", "where artifact directories are created (default: the template's output.directory)")
    .option("--debug-keys <dir>", "amazon-ebs: also write the temporary private key there (mode 0600), to log in while debugging")
    .option("--profile <name>", "amazon-ebs: the AWS profile to use, over the template's profile and AWS_PROFILE")
    .option("--plan", "show what the build would do (kiln plan) and create nothing")
    .option("--show-password", "amazon-ebs, Windows with windows.get_password: print the Administrator password (to the terminal only)")
    .action(async (file: string, options: BuildOptions) => {
      const cleanupSeconds = Number(options.cleanupTimeout);
      const epochText = process.env.SOURCE_DATE_EPOCH;
      const sourceDateEpoch = epochText === undefined || epochText === "" ? undefined : Number(epochText);
      if (sourceDateEpoch !== undefined && !(Number.isInteger(sourceDateEpoch) && sourceDateEpoch >= 0)) {
        throw new UsageError(`SOURCE_DATE_EPOCH=${epochText} is not a number of seconds`, "unset it, or set it to a Unix time like 1700000000");
      }
      if (!Number.isFinite(cleanupSeconds) || cleanupSeconds <= 0) throw new UsageError(`--cleanup-timeout ${options.cleanupTimeout} is not a positive number of seconds`);
      const loaded = await loadFromCli(file, options, redactor, (line) => io.err(line));
      if (options.plan === true) {
        // The plan looks up with the same account the build would use.
        await printPlan(loaded, { json: options.json === true, offline: false, ...(options.profile === undefined ? {} : { profile: options.profile }) }, io.out, json);
        return;
      }
      const { builders } = loaded.template;
      // Only a builder that needs root (the local one: chroot, mounts, owners) makes kiln rebuild itself rootless.
      if (process.getuid?.() !== 0 && builders.some((b) => builderKind(b).needsRoot)) {
        const code = await rebuildRootless({ workDir: options.workDir, cacheDir: options.cacheDir });
        if (code !== 0) throw new ExitStatus(code);
        return;
      }
      const report = reporterFor(options, io.out, redactor);
      const interrupts = listenForInterrupts(report);
      try {
        const stamp = loaded.startedAt.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
        const outputParent = resolve(options.outputDir ?? loaded.template.output.directory);
        const buildOptions: BuilderBuildOptions = {
          cacheDirectory: resolve(options.cacheDir ?? defaultCacheDirectory()),
          workParent: resolve(options.workDir ?? process.env.KILN_WORK_DIR ?? join(process.env.TMPDIR ?? "/var/tmp", "kiln")),
          ...(sourceDateEpoch === undefined ? {} : { sourceDateEpoch }),
          ...(options.debugKeys === undefined ? {} : { debugKeysDirectory: resolve(options.debugKeys) }),
          ...(options.profile === undefined ? {} : { profile: options.profile }),
          ...(options.showPassword === true ? { showPassword: true } : {}),
        };
        for (const [i, builder] of builders.entries()) {
          const label = builderLabel(loaded.template, i);
          const runtime = await builderKind(builder).load();
          const built = await runtime.build({
            loaded, builder, label, kilnVersion, report, redactor, options: buildOptions,
            buildId: `${label}-${stamp}-${randomBytes(3).toString("hex")}`,
            outputDirectory: join(outputParent, `${label}-${stamp}`),
            run: { report, signal: interrupts.build, cleanupSignal: interrupts.cleanup, onError: options.onError, cleanupTimeoutMs: cleanupSeconds * 1000 },
          });
          report.info(built);
        }
      } finally {
        interrupts.dispose();
      }
    });
}
