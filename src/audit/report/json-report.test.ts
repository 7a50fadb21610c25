import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Redactor } from "../../report/redact.js";
import { rules } from "../rules.js";
import { renderJsonReport, type JsonReport } from "./json-report.js";
import { awsKeyId, sampleResult } from "./sample-audit.test-fixture.js";

const options = { redactor: new Redactor(), kilnVersion: "1.2.3" };
const parse = (text: string): JsonReport => JSON.parse(text) as JsonReport;

describe("renderJsonReport", () => {
  it("is one JSON document with a version, the image, counts by severity and the verdict", () => {
    const text = renderJsonReport(sampleResult(), options);
    assert.ok(text.endsWith("}\n"));
    const report = parse(text);
    assert.deepEqual(Object.keys(report), ["version", "tool", "image", "format", "failOn", "passed", "summary", "findings", "accepted", "problems"]);
    assert.equal(report.version, 1);
    assert.deepEqual(report.tool, { name: "kiln", version: "1.2.3" });
    assert.equal(report.image, "/images/web-2024.raw");
    assert.equal(report.passed, false);
    assert.deepEqual(report.summary, {
      findings: 10, critical: 5, high: 2, medium: 2, low: 1, info: 0, accepted: 1, filesScanned: 41230, bytesScanned: 2147483648, seconds: 12.345,
    });
    assert.deepEqual(report.problems, ["/var/log/huge.log.gz: unexpected end of gzip data; its content was not scanned"]);
  });

  it("lists findings worst first with rule id, severity, location, message, excerpt and fix", () => {
    const report = parse(renderJsonReport(sampleResult(), options));
    assert.deepEqual(report.findings.map((f) => `${f.severity} ${f.rule} ${f.where}`), [
      "critical deleted-secret byte 512 (bytes outside any ext filesystem)",
      "critical deleted-secret byte 4096 (the filesystem journal, inode 8)",
      "critical deleted-secret byte 1048576 (unallocated space)",
      "critical private-key /root/.ssh/id_rsa:1",
      "critical private-key /root/.ssh/id_rsa:30",
      "high secret-assignment /opt/app with space/app.env:3",
      "high shell-history /root/.bash_history",
      "medium deleted-file byte 2097152 (blocks of a deleted file, inode 1234, was /root/.aws/credentials)",
      "medium machine-id /etc/machine-id:1",
      "low sshd-password-default /etc/ssh/sshd_config",
    ]);
    assert.deepEqual(report.findings[3], {
      rule: "private-key", title: "private key", severity: "critical",
      location: { kind: "file", path: "/root/.ssh/id_rsa", line: 1 }, where: "/root/.ssh/id_rsa:1",
      message: "OpenSSH private key, not passphrase-protected", excerpt: "OPENSSH PRIVATE KEY (399 characters of key, masked)", fix: rules.privateKey.fix,
    });
    assert.deepEqual(report.findings[7]?.location, { kind: "raw", offset: 2097152, area: "deleted-file", inode: 1234, formerPath: "/root/.aws/credentials" });
    assert.equal("excerpt" in (report.findings[0] ?? {}), false);
    assert.deepEqual(report.accepted.map((f) => [f.rule, f.where, f.acceptance]), [
      ["shell-history", "/home/ci/.bash_history", { where: "kiln-baseline.yaml:4", reason: "written by the CI user; nothing typed by hand" }],
    ]);
  });

  it("passes when nothing reaches --fail-on", () => {
    assert.equal(parse(renderJsonReport(sampleResult({ findings: [] }), options)).passed, true);
  });

  it("never contains a secret that reached a message, a path or a reason", () => {
    const result = sampleResult({
      findings: [{ ...sampleResult().findings[0]!, location: { kind: "file", path: `/srv/${awsKeyId}.txt` } }, ...sampleResult().findings],
      accepted: [{ ...sampleResult().accepted[0]!, acceptance: { where: "b.yaml:1", reason: `key ${awsKeyId} is revoked` } }],
    });
    const text = renderJsonReport(result, options);
    assert.ok(!text.includes(awsKeyId));
    assert.match(text, /AWS access key \[redacted\] in free space/);
    assert.doesNotThrow(() => parse(text));
  });
});
