import { createHash } from "node:crypto";
import { basename } from "node:path";
import type { Redactor } from "../../report/redact.js";
import type { AcceptedFinding } from "../judging/baseline.js";
import { describeLocation, findingKey, type Finding } from "../finding.js";
import { allRules, type Rule, type Severity } from "../rules.js";
import { auditFails, inReportOrder, type AuditResult } from "./audit-result.js";
import { redactDocument } from "./redact-document.js";

export interface SarifReportOptions {
  redactor: Redactor;
  kilnVersion: string;
  /** Where to read about kiln; viewers link the tool's name to it. Omitted when not given. */
  informationUri?: string;
}

const level: Record<Severity, "error" | "warning" | "note"> = { critical: "error", high: "error", medium: "warning", low: "note", info: "note" };
// GitHub code scanning reads this property to rank alerts as critical (>= 9.0), high, medium or low.
const securitySeverity: Record<Severity, string> = { critical: "9.5", high: "8.0", medium: "5.5", low: "2.0", info: "0.0" };

/**
 * The audit as SARIF 2.1.0, for GitHub code scanning and other viewers. A file inside the image is
 * an artifact relative to IMAGEROOT; bytes of the image are a region of the image file itself.
 * Findings a baseline accepted are results with an external suppression, so viewers close them.
 */
export function renderSarifReport(result: AuditResult, options: SarifReportOptions): string {
  const rules = [...allRules];
  for (const finding of [...result.findings, ...result.accepted]) {
    if (!rules.some((r) => r.id === finding.rule.id)) rules.push(finding.rule);
  }
  const occurrences = new Map<string, number>();
  // The same key twice (two keys in one file) gets a counter, so code scanning keeps both alerts.
  const fingerprint = (finding: Finding): string => {
    const key = options.redactor.redact(findingKey(finding));
    const seen = occurrences.get(key) ?? 0;
    occurrences.set(key, seen + 1);
    return createHash("sha256").update(`${key}#${seen}`).digest("hex").slice(0, 32);
  };
  const toResult = (finding: Finding) => ({
    ruleId: finding.rule.id,
    ruleIndex: rules.findIndex((r) => r.id === finding.rule.id),
    level: level[finding.severity],
    message: { text: finding.message },
    locations: [location(finding, result.image, options.redactor)],
    partialFingerprints: { "kilnFinding/v1": fingerprint(finding) },
    properties: { severity: finding.severity, ...(finding.excerpt === undefined ? {} : { excerpt: finding.excerpt }) },
  });
  const accepted = (finding: AcceptedFinding) => ({
    ...toResult(finding),
    suppressions: [{ kind: "external", status: "accepted", justification: `${finding.acceptance.where}: ${finding.acceptance.reason}` }],
  });

  const log = {
    $schema: "https://json.schemastore.org/sarif-2.1.0.json",
    version: "2.1.0",
    runs: [{
      tool: {
        driver: {
          name: "kiln",
          version: options.kilnVersion,
          ...(options.informationUri === undefined ? {} : { informationUri: options.informationUri }),
          rules: rules.map(reportingDescriptor),
        },
      },
      // No absolute URI names the root of a filesystem inside an image file, so it is described instead.
      originalUriBaseIds: { IMAGEROOT: { description: { text: `the root directory of the image ${result.image} (${result.format})` } } },
      invocations: [{
        executionSuccessful: true,
        toolExecutionNotifications: result.problems.map((problem) => ({ level: "warning", message: { text: problem } })),
      }],
      results: [...inReportOrder(result.findings).map(toResult), ...inReportOrder(result.accepted).map(accepted)],
      properties: {
        image: result.image, format: result.format, failOn: result.failOn, passed: !auditFails(result),
        filesScanned: result.filesScanned, bytesScanned: result.bytesScanned,
      },
    }],
  };
  return `${JSON.stringify(redactDocument(log, options.redactor), null, 2)}\n`;
}

function reportingDescriptor(rule: Rule) {
  return {
    id: rule.id,
    name: rule.id.split("-").map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join(""),
    shortDescription: { text: rule.title },
    help: { text: rule.fix },
    defaultConfiguration: { level: level[rule.severity] },
    properties: { "security-severity": securitySeverity[rule.severity], tags: ["security"] },
  };
}

// Paths are redacted before they are percent-encoded: the final redaction pass cannot see inside an encoded URI.
function location(finding: Finding, image: string, redactor: Redactor) {
  const at = finding.location;
  if (at.kind === "file") {
    const uri = redactor.redact(at.path).replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
    return {
      physicalLocation: {
        artifactLocation: { uri, uriBaseId: "IMAGEROOT" },
        ...(at.line === undefined ? {} : { region: { startLine: at.line } }),
      },
    };
  }
  return {
    physicalLocation: {
      artifactLocation: { uri: encodeURIComponent(redactor.redact(basename(image))) },
      region: { byteOffset: at.offset },
    },
    message: { text: describeLocation(at) },
  };
}
