import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { Option, type Command } from "commander";
import { auditImage } from "../../audit/audit-image.js";
import { loadBaseline, type Baseline } from "../../audit/judging/baseline.js";
import { auditFails, type AuditResult } from "../../audit/report/audit-result.js";
import { renderJsonReport } from "../../audit/report/json-report.js";
import { renderSarifReport } from "../../audit/report/sarif-report.js";
import { renderTextReport } from "../../audit/report/text-report.js";
import { severities, type Severity } from "../../audit/rules.js";
import { CancelledError, ExitStatus, KilnError } from "../../errors.js";
import { kilnVersion } from "../../version.js";
import { remoteImageId } from "../../publish/remote-id.js";
import { checkFindingsFile } from "../../publish/built-disk.js";
import type { CliContext } from "../io.js";

interface AuditCliOptions {
  json?: boolean;
  sarif?: string;
  failOn: Severity;
  baseline?: string;
  region?: string;
  profile?: string;
}

export function auditCommand(program: Command, { io, redactor, document }: CliContext): void {
  program.command("audit").argument("<path>", "a directory, tar archive (plain, gzip, zstd, xz), raw disk or filesystem image, qcow2/vmdk/vhdx, or an AMI (ami-…) or EBS snapshot (snap-…) read back from AWS")
    .description("find what must never ship in a shared image: keys, credentials, histories, recoverable deleted data")
    .option("--json", "print the report as JSON")
    .option("--sarif <file>", "also write the report as SARIF 2.1.0 (for code-scanning tools)")
    .addOption(new Option("--fail-on <severity>", "exit 1 when a finding is this severe or worse").choices(severities).default("high"))
    .option("--baseline <file>", "a YAML/JSON file of accepted findings (rule and path)")
    .option("--region <region>", "ami-…/snap-…: its region (default: AWS_REGION, else the profile's)")
    .option("--profile <name>", "ami-…/snap-…: the AWS profile to read it with")
    .action(async (path: string, options: AuditCliOptions) => {
      if (options.baseline !== undefined) await checkFindingsFile(options.baseline, "--baseline", false);
      const baseline = options.baseline === undefined ? undefined : await loadBaseline(options.baseline);
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        const started = Date.now();
        const progress = (message: string): void => io.err(`==> [${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
        const results = await auditTarget(path, options, { signal: stop.signal, progress, baseline });
        for (const result of results) {
          if (options.json === true) document(renderJsonReport(result, { redactor, kilnVersion }));
          else for (const line of renderTextReport(result, { redactor, color: process.stdout.isTTY === true && process.env.NO_COLOR === undefined })) io.out(line);
        }
        // After the report: a SARIF path that cannot be written still leaves the findings on screen.
        if (options.sarif !== undefined) await writeSarif(options.sarif, oneSarif(results.map((result) => renderSarifReport(result, { redactor, kilnVersion }))));
        if (results.some(auditFails)) throw new ExitStatus(1);
      } catch (error) {
        throw stop.signal.aborted ? new CancelledError("audit cancelled") : error;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}

async function writeSarif(file: string, sarif: string): Promise<void> {
  try {
    await writeFile(file, sarif);
  } catch (error) {
    throw new KilnError("KILN_AUDIT_SARIF_UNWRITABLE", `cannot write the SARIF report to ${file}: ${(error as Error).message}`, {
      exitCode: 2, hint: "give --sarif a path in a directory that exists and is writable",
    });
  }
}

/** A path is a file or directory here; an ami-…/snap-… that is no file here is read back from AWS. */
async function auditTarget(path: string, options: AuditCliOptions, run: { signal: AbortSignal; progress: (line: string) => void; baseline: Baseline | undefined }): Promise<AuditResult[]> {
  const common = { failOn: options.failOn, signal: run.signal, progress: run.progress, ...(run.baseline === undefined ? {} : { baseline: run.baseline }) };
  if (remoteImageId.test(path) && !existsSync(path)) {
    // Loaded only for an image in AWS: a local audit loads no AWS SDK.
    const { auditRemoteImage } = await import("../../publish/remote-audit.js");
    return auditRemoteImage(path, { ...common, region: options.region, profile: options.profile });
  }
  return [await auditImage(path, common)];
}

/** One SARIF document for several audits (an AMI's snapshots): one run each. */
function oneSarif(documents: string[]): string {
  if (documents.length === 1) return documents[0] ?? "";
  const parsed = documents.map((d) => JSON.parse(d) as { runs: unknown[] });
  return JSON.stringify({ ...parsed[0], runs: parsed.flatMap((d) => d.runs) }, null, 2);
}
