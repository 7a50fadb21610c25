import { writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { auditImage } from "../../../audit/audit-image.js";
import { loadBaseline } from "../../../audit/judging/baseline.js";
import { describeLocation } from "../../../audit/finding.js";
import { auditFails, countBySeverity, inReportOrder } from "../../../audit/report/audit-result.js";
import { renderJsonReport } from "../../../audit/report/json-report.js";
import { atLeast } from "../../../audit/rules.js";
import { KilnError } from "../../../errors.js";
import type { LocalFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import type { LocalBuildRequest } from "../request.js";
import type { DiskImage, PartialOutput } from "./filesystem-image.js";
import type { RecordedBase } from "../../../audit/judging/recorded-base.js";

export interface AuditSummary {
  /** `audit.json` beside the manifest (in the partial output until it is published); absent when the template says `audit: false`. */
  reportPath?: string;
  findings: number;
}

/**
 * Audits the disk image before anything else is made from it: a finding at or above the
 * template's `fail_on` fails the build, so an image with a key or a history never ships.
 */
export const auditArtifact: Step<LocalBuildRequest & { disk: DiskImage; partialOutput: PartialOutput; recordedBase: RecordedBase | undefined }, { audit: AuditSummary }, LocalFacts> = {
  name: "audit image",
  plan: ({ loaded }) => ({ calls: [], creates: [], note: loaded.template.audit === false ? "audit: false" : `fails at ${loaded.template.audit.fail_on} or worse` }),
  run: async (ctx, { loaded, disk, partialOutput, kilnVersion, recordedBase }) => {
    const settings = loaded.template.audit;
    if (settings === false) return { output: { audit: { findings: 0 } }, summary: "skipped (audit: false)" };
    const baseline = settings.baseline === undefined ? undefined : await loadBaseline(resolve(loaded.directory, settings.baseline));
    const result = await auditImage(disk.path, { failOn: settings.fail_on, signal: ctx.signal, ...(baseline === undefined ? {} : { baseline }), ...(recordedBase === undefined ? {} : { recordedBase }) });
    const reportPath = join(partialOutput.directory, "audit.json");
    await writeFile(reportPath, `${renderJsonReport(result, { redactor: ctx.report.redactor, kilnVersion })}\n`);
    for (const finding of inReportOrder(result.findings)) {
      const line = `${finding.severity} ${finding.rule.id} ${describeLocation(finding.location)}: ${finding.message}`;
      if (atLeast(finding.severity, settings.fail_on)) ctx.report.warn(line);
      else ctx.report.info(line);
    }
    for (const problem of result.problems) ctx.report.warn(`audit could not read all of the image: ${problem}`);
    const counts = countBySeverity(result.findings);
    const tally = Object.entries(counts).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(", ") || "no findings";
    if (auditFails(result)) {
      throw new KilnError("KILN_AUDIT_FAILED", `the image fails its audit (${tally}; fail_on: ${settings.fail_on})`, {
        // The image stays unpublished: its partial output is removed, or kept by --on-error abort to look into.
        hint: "remove what the findings name in a provisioner or clean.paths; accept a known finding in an audit baseline, or raise audit.fail_on; "
          + `to look into the image, build with --on-error abort: it keeps it unpublished in ${dirname(partialOutput.destination)}/.partial-<build id>-… (kiln audit DIR/disk.raw; kiln cleanup BUILD_ID removes it)`,
      });
    }
    return { output: { audit: { reportPath, findings: result.findings.length } }, summary: `${result.findings.length === 0 ? "no findings" : `${tally}, none at or above ${settings.fail_on}`}; report ${reportPath}` };
  },
};
