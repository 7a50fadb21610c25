import type { AcceptedFinding } from "../judging/baseline.js";
import type { Finding } from "../finding.js";
import { rules } from "../rules.js";
import type { AuditResult } from "./audit-result.js";

/** An AWS access key id of the documented example shape: no output may contain it. */
export const awsKeyId = "AKIAIOSFODNN7EXAMPLE";

/** Findings of every location kind and every severity, given out of order on purpose. */
export const sampleFindings: Finding[] = [
  { rule: rules.sshdPasswordDefault, severity: "low", location: { kind: "file", path: "/etc/ssh/sshd_config" }, message: "PasswordAuthentication is not set" },
  { rule: rules.shellHistory, severity: "high", location: { kind: "file", path: "/root/.bash_history" }, message: "bash history with 212 lines" },
  {
    rule: rules.deletedFile, severity: "medium",
    location: { kind: "raw", offset: 2097152, area: "deleted-file", inode: 1234, formerPath: "/root/.aws/credentials" },
    message: "deleted file whose blocks still hold 1.2 kB of text",
  },
  { rule: rules.privateKey, severity: "critical", location: { kind: "file", path: "/root/.ssh/id_rsa", line: 30 }, message: "RSA private key, not passphrase-protected", excerpt: "RSA PRIVATE KEY (1675 characters of key, masked)" },
  { rule: rules.privateKey, severity: "critical", location: { kind: "file", path: "/root/.ssh/id_rsa", line: 1 }, message: "OpenSSH private key, not passphrase-protected", excerpt: "OPENSSH PRIVATE KEY (399 characters of key, masked)" },
  { rule: rules.deletedSecret, severity: "critical", location: { kind: "raw", offset: 1048576, area: "unallocated" }, message: `AWS access key ${awsKeyId} in free space`, excerpt: "AKIA****************" },
  { rule: rules.deletedSecret, severity: "critical", location: { kind: "raw", offset: 4096, area: "journal", inode: 8 }, message: "GitHub token in the journal", excerpt: "ghp_****" },
  { rule: rules.deletedSecret, severity: "critical", location: { kind: "raw", offset: 512, area: "outside-filesystem" }, message: "private key block before the first partition" },
  { rule: rules.machineId, severity: "medium", location: { kind: "file", path: "/etc/machine-id", line: 1 }, message: "machine-id is set", excerpt: "4f1c****" },
  { rule: rules.secretAssignment, severity: "high", location: { kind: "file", path: "/opt/app with space/app.env", line: 3 }, message: "DB_PASSWORD set", excerpt: "DB_PASSWORD=****" },
];

export const sampleAccepted: AcceptedFinding[] = [{
  rule: rules.shellHistory, severity: "high", location: { kind: "file", path: "/home/ci/.bash_history" }, message: "bash history with 3 lines",
  acceptance: { where: "kiln-baseline.yaml:4", reason: "written by the CI user; nothing typed by hand" },
}];

export function sampleResult(overrides: Partial<AuditResult> = {}): AuditResult {
  return {
    image: "/images/web-2024.raw", format: "raw disk image",
    findings: sampleFindings, accepted: sampleAccepted,
    filesScanned: 41230, bytesScanned: 2147483648, seconds: 12.345, failOn: "high",
    problems: ["/var/log/huge.log.gz: unexpected end of gzip data; its content was not scanned"],
    ...overrides,
  };
}
