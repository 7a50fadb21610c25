import type { Redactor } from "../../report/redact.js";
import type { AcceptedFinding } from "../judging/baseline.js";
import { describeLocation, type Finding, type FindingLocation } from "../finding.js";
import type { Severity } from "../rules.js";
import { auditFails, countBySeverity, inReportOrder, type AuditResult } from "./audit-result.js";
import { redactDocument } from "./redact-document.js";

export interface JsonReportOptions {
  redactor: Redactor;
  kilnVersion: string;
}

/** Bumped when a field changes meaning or goes away; adding a field does not bump it. */
export const jsonReportVersion = 1;

export interface JsonFinding {
  rule: string;
  title: string;
  severity: Severity;
  location: FindingLocation;
  /** The location as the text report prints it: "/etc/shadow:3", "byte 1048576 (unallocated space)". */
  where: string;
  message: string;
  excerpt?: string;
  fix: string;
}

export interface JsonReport {
  version: typeof jsonReportVersion;
  tool: { name: "kiln"; version: string };
  image: string;
  format: string;
  failOn: Severity;
  passed: boolean;
  summary: Record<Severity, number> & { findings: number; accepted: number; filesScanned: number; bytesScanned: number; seconds: number };
  findings: JsonFinding[];
  accepted: (JsonFinding & { acceptance: { where: string; reason: string } })[];
  problems: string[];
  exemptions?: string;
}

/** The report for machines: one JSON document whose field order and finding order are stable. */
export function renderJsonReport(result: AuditResult, options: JsonReportOptions): string {
  const report: JsonReport = {
    version: jsonReportVersion,
    tool: { name: "kiln", version: options.kilnVersion },
    image: result.image,
    format: result.format,
    failOn: result.failOn,
    passed: !auditFails(result),
    summary: {
      findings: result.findings.length,
      ...countBySeverity(result.findings),
      accepted: result.accepted.length,
      filesScanned: result.filesScanned,
      bytesScanned: result.bytesScanned,
      seconds: Math.round(result.seconds * 1000) / 1000,
    },
    findings: inReportOrder(result.findings).map(jsonFinding),
    accepted: inReportOrder(result.accepted).map((f: AcceptedFinding) => ({ ...jsonFinding(f), acceptance: { where: f.acceptance.where, reason: f.acceptance.reason } })),
    problems: [...result.problems],
    ...(result.exemptions === undefined ? {} : { exemptions: result.exemptions }),
  };
  return `${JSON.stringify(redactDocument(report, options.redactor), null, 2)}\n`;
}

function jsonFinding(finding: Finding): JsonFinding {
  return {
    rule: finding.rule.id,
    title: finding.rule.title,
    severity: finding.severity,
    location: jsonLocation(finding.location),
    where: describeLocation(finding.location),
    message: finding.message,
    ...(finding.excerpt === undefined ? {} : { excerpt: finding.excerpt }),
    fix: finding.rule.fix,
  };
}

// Field by field, so the document's shape is this file's and not whatever else a location carries.
function jsonLocation(location: FindingLocation): FindingLocation {
  if (location.kind === "file") return { kind: "file", path: location.path, ...(location.line === undefined ? {} : { line: location.line }) };
  return {
    kind: "raw",
    offset: location.offset,
    area: location.area,
    ...(location.inode === undefined ? {} : { inode: location.inode }),
    ...(location.formerPath === undefined ? {} : { formerPath: location.formerPath }),
    ...(location.path === undefined ? {} : { path: location.path }),
  };
}
