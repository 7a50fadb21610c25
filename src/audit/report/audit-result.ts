import type { AcceptedFinding } from "../judging/baseline.js";
import type { Finding } from "../finding.js";
import { atLeast, severities, type Severity } from "../rules.js";

/** What `kiln audit` found in one image; every renderer (text, JSON, SARIF) reads this. */
export interface AuditResult {
  /** The path the audit was given. */
  image: string;
  /** What the image was read as: "directory", "tar archive", "raw disk image", "qcow2". */
  format: string;
  /** Findings no baseline entry accepted: these decide whether the audit passes. */
  findings: readonly Finding[];
  /** Findings a baseline accepted: reported so they stay visible, never counted against --fail-on. */
  accepted: readonly AcceptedFinding[];
  filesScanned: number;
  bytesScanned: number;
  seconds: number;
  failOn: Severity;
  /** Parts of the image that could not be read: the audit is incomplete where they are. */
  problems: readonly string[];
  /** What a stock-file exemption rests on here (the recorded base, or none), in a sentence. */
  exemptions?: string;
}

/** Whether any finding is at or above the --fail-on severity. */
export function auditFails(result: AuditResult): boolean {
  return result.findings.some((f) => atLeast(f.severity, result.failOn));
}

/** Severities worst first, the order every report lists them in. */
export const severitiesWorstFirst: readonly Severity[] = [...severities].reverse();

export function countBySeverity(findings: readonly Finding[]): Record<Severity, number> {
  const counts: Record<Severity, number> = { critical: 0, high: 0, medium: 0, low: 0, info: 0 };
  for (const finding of findings) counts[finding.severity]++;
  return counts;
}

/**
 * Findings worst first, then by rule id, then by place (paths, then raw offsets), so that two runs
 * over the same image print the same report and diffs of reports mean something.
 */
export function inReportOrder<F extends Finding>(findings: readonly F[]): F[] {
  return [...findings].sort((a, b) =>
    severitiesWorstFirst.indexOf(a.severity) - severitiesWorstFirst.indexOf(b.severity)
    || compare(a.rule.id, b.rule.id)
    || compareLocations(a, b));
}

function compareLocations(a: Finding, b: Finding): number {
  const x = a.location;
  const y = b.location;
  if (x.kind === "file" && y.kind === "file") return compare(x.path, y.path) || (x.line ?? 0) - (y.line ?? 0);
  if (x.kind === "raw" && y.kind === "raw") return x.offset - y.offset;
  return x.kind === "file" ? -1 : 1;
}

// Code-unit order, not localeCompare: the same on every machine whatever its locale.
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
