import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { JsonReporter, TextReporter } from "./reporter.js";

describe("reporters", () => {
  it("text: a step line with elapsed time, detail lines indented, secrets redacted", () => {
    const lines: string[] = [];
    const report = new TextReporter((l) => lines.push(l));
    report.redactor.addSecret("tok-123456");
    report.stepStarted(3, 8, "provision");
    report.output("provisioner 1 (shell)", "using tok-123456");
    report.cleanup("remove work directory /w", "failed", "EBUSY");
    assert.match(lines[0] ?? "", /^==> \[0\.\ds\] 3\/8 provision$/);
    assert.equal(lines[1], "    provisioner 1 (shell): using [redacted]");
    assert.match(lines[2] ?? "", /^<== \[0\.\ds\] failed remove work directory \/w: EBUSY$/);
  });

  it("json: one parseable object per line, redacted too", () => {
    const lines: string[] = [];
    const report = new JsonReporter((l) => lines.push(l));
    report.stepStarted(1, 2, "base root filesystem");
    report.output("mmdebstrap", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----");
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual({ ...events[0], time: 0 }, { time: 0, event: "step", index: 1, total: 2, name: "base root filesystem" });
    assert.equal(events[1]?.line, "[redacted]");
  });

  it("json: a secret with quotes and backslashes is redacted before it is escaped", () => {
    const lines: string[] = [];
    const report = new JsonReporter((l) => lines.push(l));
    report.redactor.addSecret('pa"ss\\w0rd');
    report.output("provisioner 1 (shell)", 'login with pa"ss\\w0rd');
    assert.equal((JSON.parse(lines[0] ?? "{}") as { line: string }).line, "login with [redacted]");
    assert.ok(!lines[0]?.includes("w0rd"));
  });
});
