import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Redactor } from "../../report/redact.js";
import { allRules } from "../rules.js";
import { awsKeyId, sampleResult } from "./sample-audit.test-fixture.js";
import { renderSarifReport } from "./sarif-report.js";

interface SarifResult {
  ruleId: string;
  ruleIndex: number;
  level: string;
  message: { text: string };
  locations: { physicalLocation: { artifactLocation: { uri: string; uriBaseId?: string }; region?: Record<string, number> }; message?: { text: string } }[];
  partialFingerprints: Record<string, string>;
  suppressions?: { kind: string; status: string; justification: string }[];
}
interface SarifRule {
  id: string;
  name: string;
  shortDescription: { text: string };
  help: { text: string };
  defaultConfiguration: { level: string };
  properties: { "security-severity": string; tags: string[] };
}
interface SarifLog {
  $schema: string;
  version: string;
  runs: {
    tool: { driver: { name: string; version: string; informationUri?: string; rules: SarifRule[] } };
    originalUriBaseIds: Record<string, { uri?: string; description: { text: string } }>;
    invocations: { executionSuccessful: boolean; toolExecutionNotifications: { level: string; message: { text: string } }[] }[];
    results: SarifResult[];
  }[];
}

const options = { redactor: new Redactor(), kilnVersion: "1.2.3", informationUri: "https://example.com/kiln" };

function render(result = sampleResult()) {
  const log = JSON.parse(renderSarifReport(result, options)) as SarifLog;
  const run = log.runs[0];
  assert.ok(run !== undefined);
  return { log, run };
}

describe("renderSarifReport", () => {
  it("is a SARIF 2.1.0 log whose driver describes every rule", () => {
    const { log, run } = render();
    assert.equal(log.$schema, "https://json.schemastore.org/sarif-2.1.0.json");
    assert.equal(log.version, "2.1.0");
    assert.equal(log.runs.length, 1);
    const { driver } = run.tool;
    assert.deepEqual([driver.name, driver.version, driver.informationUri], ["kiln", "1.2.3", "https://example.com/kiln"]);
    assert.deepEqual(driver.rules.map((r) => r.id), allRules.map((r) => r.id));
    assert.deepEqual(driver.rules.find((r) => r.id === "private-key"), {
      id: "private-key", name: "PrivateKey", shortDescription: { text: "private key" },
      help: { text: allRules.find((r) => r.id === "private-key")?.fix },
      defaultConfiguration: { level: "error" }, properties: { "security-severity": "9.5", tags: ["security"] },
    });
    const byId = (id: string) => driver.rules.find((r) => r.id === id);
    assert.deepEqual([byId("shell-history"), byId("machine-id"), byId("sshd-password-default")].map((r) => [r?.defaultConfiguration.level, r?.properties["security-severity"]]),
      [["error", "8.0"], ["warning", "5.5"], ["note", "2.0"]]);
    assert.ok(run.originalUriBaseIds.IMAGEROOT?.description.text.includes("/images/web-2024.raw"));
  });

  it("maps severities to levels and points each result at its rule", () => {
    const { run } = render();
    assert.deepEqual(run.results.map((r) => `${r.level} ${r.ruleId}`), [
      "error deleted-secret", "error deleted-secret", "error deleted-secret", "error private-key", "error private-key",
      "error secret-assignment", "error shell-history", "warning deleted-file", "warning machine-id", "note sshd-password-default",
      "error shell-history",
    ]);
    for (const result of run.results) assert.equal(run.tool.driver.rules[result.ruleIndex]?.id, result.ruleId);
  });

  it("locates a file inside the image relative to IMAGEROOT and raw bytes in the image file", () => {
    const { run } = render();
    const where = (i: number) => run.results[i]?.locations[0];
    assert.deepEqual(where(3), { physicalLocation: { artifactLocation: { uri: "root/.ssh/id_rsa", uriBaseId: "IMAGEROOT" }, region: { startLine: 1 } } });
    assert.deepEqual(where(6), { physicalLocation: { artifactLocation: { uri: "root/.bash_history", uriBaseId: "IMAGEROOT" } } });
    assert.equal(where(5)?.physicalLocation.artifactLocation.uri, "opt/app%20with%20space/app.env");
    assert.deepEqual(where(2), {
      physicalLocation: { artifactLocation: { uri: "web-2024.raw" }, region: { byteOffset: 1048576 } },
      message: { text: "byte 1048576 (unallocated space)" },
    });
  });

  it("fingerprints findings stably across runs, and two findings of one rule in one file apart", () => {
    const first = render().run.results.map((r) => r.partialFingerprints["kilnFinding/v1"]);
    const again = render(sampleResult({ findings: [...sampleResult().findings].reverse() })).run.results.map((r) => r.partialFingerprints["kilnFinding/v1"]);
    assert.deepEqual(again, first);
    assert.equal(new Set(first).size, first.length);
    assert.ok(first.every((f) => f !== undefined && /^[0-9a-f]{32}$/.test(f)));
  });

  it("reports accepted findings as suppressed and unreadable parts as notifications", () => {
    const { run } = render();
    assert.deepEqual(run.results.at(-1)?.suppressions, [{ kind: "external", status: "accepted", justification: "kiln-baseline.yaml:4: written by the CI user; nothing typed by hand" }]);
    assert.equal(run.results.filter((r) => r.suppressions !== undefined).length, 1);
    assert.deepEqual(run.invocations, [{
      executionSuccessful: true,
      toolExecutionNotifications: [{ level: "warning", message: { text: "/var/log/huge.log.gz: unexpected end of gzip data; its content was not scanned" } }],
    }]);
  });

  it("never contains a secret that reached a message, a path or the image name", () => {
    const findings = sampleResult().findings;
    const result = sampleResult({
      image: `/images/${awsKeyId}.raw`,
      findings: [{ ...findings[0]!, location: { kind: "file", path: `/srv/${awsKeyId}/x` } }, ...findings],
    });
    const text = renderSarifReport(result, options);
    assert.ok(!text.includes(awsKeyId));
    assert.ok(text.includes("srv/%5Bredacted%5D/x"));
  });
});
