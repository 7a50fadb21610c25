import { writeFile } from "node:fs/promises";
import { Option, type Command } from "commander";
import { auditImage } from "../../audit/audit-image.js";
import { loadBaseline } from "../../audit/judging/baseline.js";
import { auditFails } from "../../audit/report/audit-result.js";
import { renderJsonReport } from "../../audit/report/json-report.js";
import { renderSarifReport } from "../../audit/report/sarif-report.js";
import { renderTextReport } from "../../audit/report/text-report.js";
import { severities, type Severity } from "../../audit/rules.js";
import { CancelledError, ExitStatus, KilnError } from "../../errors.js";
import { kilnVersion } from "../../version.js";
import type { CliContext } from "../io.js";

interface AuditCliOptions {
  json?: boolean;
  sarif?: string;
  failOn: Severity;
  baseline?: string;
}

export function auditCommand(program: Command, { io, redactor, document }: CliContext): void {
  program.command("audit").argument("<path>", "a directory, tar archive (plain, gzip, zstd, xz), raw disk or filesystem image, or qcow2/vmdk/vhdx")
    .description("find what must never ship in a shared image: keys, credentials, histories, recoverable deleted data")
    .option("--json", "print the report as JSON")
    .option("--sarif <file>", "also write the report as SARIF 2.1.0 (for code-scanning tools)")
    .addOption(new Option("--fail-on <severity>", "exit 1 when a finding is this severe or worse").choices(severities).default("high"))
    .option("--baseline <file>", "a YAML/JSON file of accepted findings (rule and path)")
    .action(async (path: string, options: AuditCliOptions) => {
      const baseline = options.baseline === undefined ? undefined : await loadBaseline(options.baseline);
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        const started = Date.now();
        const progress = (message: string): void => io.err(`==> [${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
        const result = await auditImage(path, { failOn: options.failOn, signal: stop.signal, progress, ...(baseline === undefined ? {} : { baseline }) });
        if (options.json === true) document(renderJsonReport(result, { redactor, kilnVersion }));
        else for (const line of renderTextReport(result, { redactor, color: process.stdout.isTTY === true && process.env.NO_COLOR === undefined })) io.out(line);
        // After the report: a SARIF path that cannot be written still leaves the findings on screen.
        if (options.sarif !== undefined) await writeSarif(options.sarif, renderSarifReport(result, { redactor, kilnVersion }));
        if (auditFails(result)) throw new ExitStatus(1);
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
