import { megabytes } from "../../report/format.js";
import type { Redactor } from "../../report/redact.js";
import { describeLocation, findingKey, type Finding } from "../finding.js";
import type { Severity } from "../rules.js";
import { auditFails, countBySeverity, inReportOrder, severitiesWorstFirst, type AuditResult } from "./audit-result.js";

export interface TextReportOptions {
  /** ANSI colours: the caller passes whether stdout is a terminal and NO_COLOR is unset. */
  color: boolean;
  redactor: Redactor;
}

const severityStyle: Record<Severity, string> = { critical: "1;31", high: "31", medium: "33", low: "36", info: "2" };

/**
 * The report for people: findings grouped by severity (worst first) and rule, each with where it
 * is, what it is and a masked excerpt, the rule's fix once per group, and a closing line that says
 * whether the image passes --fail-on.
 */
export function renderTextReport(result: AuditResult, options: TextReportOptions): string[] {
  // Redacted before painting, so that a colour code can never split a secret the redactor would catch.
  const line = (text: string, style?: string): string => {
    const clean = options.redactor.redact(text);
    return options.color && style !== undefined ? `\x1b[${style}m${clean}\x1b[0m` : clean;
  };
  const lines = [line(`kiln audit ${result.image} (${result.format}): ${plural(result.filesScanned, "file")}, ${megabytes(result.bytesScanned)} in ${result.seconds.toFixed(1)}s`)];
  if (result.exemptions !== undefined) lines.push(line(`exemptions: ${result.exemptions}`));

  const findings = inReportOrder(result.findings);
  for (const severity of severitiesWorstFirst) {
    const ofSeverity = findings.filter((f) => f.severity === severity);
    if (ofSeverity.length === 0) continue;
    lines.push("", line(severity.toUpperCase(), severityStyle[severity]));
    for (const group of byRule(ofSeverity)) {
      const { rule } = group[0] as Finding;
      lines.push(line(`  ${rule.id} — ${rule.title}`, "1"));
      for (const finding of group) {
        lines.push(line(`    ${describeLocation(finding.location)} — ${finding.message}`));
        if (finding.excerpt !== undefined) lines.push(line(`      ${finding.excerpt}`, "2"));
      }
      lines.push(line(`    fix: ${rule.fix}`));
    }
  }

  if (result.accepted.length > 0) {
    lines.push("", line(`accepted by the baseline, not counted against --fail-on (${result.accepted.length}):`));
    for (const finding of inReportOrder(result.accepted)) {
      lines.push(line(`  ${findingKey(finding)} — ${finding.acceptance.where}: ${finding.acceptance.reason}`, "2"));
    }
  }
  if (result.problems.length > 0) {
    lines.push("", line("not read, so the audit is incomplete there:", "33"));
    for (const problem of result.problems) lines.push(line(`  ${problem}`));
  }

  lines.push("", line(summary(result), auditFails(result) ? "1;31" : "32"));
  return lines;
}

/** "3 findings: 1 critical, 2 high; fails --fail-on high" */
function summary(result: AuditResult): string {
  const counts = countBySeverity(result.findings);
  const bySeverity = severitiesWorstFirst.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`).join(", ");
  const found = result.findings.length === 0 ? "no findings" : `${plural(result.findings.length, "finding")}: ${bySeverity}`;
  return `${found}; ${auditFails(result) ? "fails" : "passes"} --fail-on ${result.failOn}`;
}

/** Consecutive findings of one rule (the input is in report order, so each rule's are together). */
function byRule(findings: readonly Finding[]): Finding[][] {
  const groups: Finding[][] = [];
  for (const finding of findings) {
    const last = groups.at(-1);
    if (last?.[0]?.rule.id === finding.rule.id) last.push(finding);
    else groups.push([finding]);
  }
  return groups;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
