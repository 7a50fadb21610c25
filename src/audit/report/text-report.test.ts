import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Redactor } from "../../report/redact.js";
import { allRules, rules } from "../rules.js";
import { awsKeyId, sampleResult } from "./sample-audit.test-fixture.js";
import { renderTextReport } from "./text-report.js";

const plain = { color: false, redactor: new Redactor() };
// eslint-disable-next-line no-control-regex -- an ANSI colour code starts with ESC
const ansi = /\x1b\[[0-9;]*m/g;

describe("renderTextReport", () => {
  it("groups findings by severity, worst first, then by rule, with each rule's fix once", () => {
    assert.deepEqual(renderTextReport(sampleResult(), plain), [
      "kiln audit /images/web-2024.raw (raw disk image): 41230 files, 2048 MB in 12.3s",
      "",
      "CRITICAL",
      "  deleted-secret — secret in unallocated space (recoverable deleted data)",
      "    byte 512 (bytes outside any ext filesystem) — private key block before the first partition",
      "    byte 4096 (the filesystem journal, inode 8) — GitHub token in the journal",
      "      ghp_****",
      "    byte 1048576 (unallocated space) — AWS access key [redacted] in free space",
      "      AKIA****************",
      `    fix: ${rules.deletedSecret.fix}`,
      "  private-key — private key",
      "    /root/.ssh/id_rsa:1 — OpenSSH private key, not passphrase-protected",
      "      OPENSSH PRIVATE KEY (399 characters of key, masked)",
      "    /root/.ssh/id_rsa:30 — RSA private key, not passphrase-protected",
      "      RSA PRIVATE KEY (1675 characters of key, masked)",
      `    fix: ${rules.privateKey.fix}`,
      "",
      "HIGH",
      "  secret-assignment — password or secret set in a configuration or log file",
      "    /opt/app with space/app.env:3 — DB_PASSWORD set",
      "      DB_PASSWORD=[redacted]",
      `    fix: ${rules.secretAssignment.fix}`,
      "  shell-history — shell or REPL history",
      "    /root/.bash_history — bash history with 212 lines",
      `    fix: ${rules.shellHistory.fix}`,
      "",
      "MEDIUM",
      "  deleted-file — deleted file whose content is still in the image",
      "    byte 2097152 (blocks of a deleted file, inode 1234, was /root/.aws/credentials) — deleted file whose blocks still hold 1.2 kB of text",
      `    fix: ${rules.deletedFile.fix}`,
      "  machine-id — populated machine-id",
      "    /etc/machine-id:1 — machine-id is set",
      "      4f1c****",
      `    fix: ${rules.machineId.fix}`,
      "",
      "LOW",
      "  sshd-password-default — sshd's PasswordAuthentication is not set (OpenSSH's default is yes)",
      "    /etc/ssh/sshd_config — PasswordAuthentication is not set",
      `    fix: ${rules.sshdPasswordDefault.fix}`,
      "",
      "accepted by the baseline, not counted against --fail-on (1):",
      "  shell-history /home/ci/.bash_history — kiln-baseline.yaml:4: written by the CI user; nothing typed by hand",
      "",
      "not read, so the audit is incomplete there:",
      "  /var/log/huge.log.gz: unexpected end of gzip data; its content was not scanned",
      "",
      "10 findings: 5 critical, 2 high, 2 medium, 1 low; fails --fail-on high",
    ]);
  });

  it("says whether the image passes --fail-on, counting only findings at or above it", () => {
    const low = sampleResult().findings.filter((f) => f.severity === "low");
    assert.equal(renderTextReport(sampleResult({ findings: low, failOn: "medium" }), plain).at(-1), "1 finding: 1 low; passes --fail-on medium");
    assert.equal(renderTextReport(sampleResult({ findings: low, failOn: "low" }), plain).at(-1), "1 finding: 1 low; fails --fail-on low");
    const clean = renderTextReport(sampleResult({ findings: [], accepted: [], problems: [] }), plain);
    assert.deepEqual(clean.slice(1), ["", "no findings; passes --fail-on high"]);
  });

  it("prints every rule's fix intact through the redactor", () => {
    for (const rule of allRules) {
      const finding = { rule, severity: rule.severity, location: { kind: "file" as const, path: "/x" }, message: "m" };
      assert.ok(renderTextReport(sampleResult({ findings: [finding] }), plain).includes(`    fix: ${rule.fix}`), rule.id);
    }
  });

  it("uses ANSI colours only when asked, and they change nothing else", () => {
    const uncoloured = renderTextReport(sampleResult(), plain);
    assert.ok(uncoloured.every((line) => !line.includes("\x1b")));
    const coloured = renderTextReport(sampleResult(), { ...plain, color: true });
    assert.ok(coloured.some((line) => line.includes("\x1b[1;31mCRITICAL\x1b[0m")));
    assert.ok(coloured.at(-1)?.startsWith("\x1b[1;31m10 findings"));
    assert.deepEqual(coloured.map((line) => line.replace(ansi, "")), uncoloured);
  });

  it("passes every string through the redactor: messages, excerpts, paths, reasons and problems", () => {
    const redactor = new Redactor();
    redactor.addSecret("hunter2-registered");
    const result = sampleResult({
      image: "/images/hunter2-registered.raw",
      problems: [`could not read /etc/${awsKeyId}`],
      accepted: [{ ...sampleResult().accepted[0]!, acceptance: { where: "b.yaml:1", reason: `rotated ${awsKeyId}` } }],
    });
    const text = renderTextReport(result, { color: true, redactor }).join("\n");
    assert.ok(!text.includes(awsKeyId) && !text.includes("hunter2-registered"));
    assert.match(text, /AWS access key \[redacted\] in free space/);
  });
});
