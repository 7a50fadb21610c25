import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { after, describe, it } from "node:test";
import { auditImage } from "./audit-image.js";
import { parseBaseline } from "./judging/baseline.js";
import { auditFails } from "./report/audit-result.js";

function put(root: string, path: string, content: string | Buffer): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
}

function sshKey(dir: string, name: string): string {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, name)]);
  return readFileSync(join(dir, name), "latin1");
}

describe("the audit cannot be talked out of a finding: completeness", { timeout: 5 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-completeness-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("finds all 11 keys of an image whose first file holds 150,000 decoy candidates", async () => {
    const tree = join(dir, "flood");
    const keys = join(dir, "keys");
    mkdirSync(keys);
    // Short candidates every judge throws out (no value, placeholders), packed into one scan chunk.
    const decoys = ["secret=1", "password=", "secret:x", "passwd=*"];
    put(tree, "/aaa/decoys.txt", Array.from({ length: 150_000 }, (_, i) => decoys[i % decoys.length]).join("\n"));
    const paths: string[] = [];
    for (let i = 0; i < 11; i++) {
      // Keys spread far apart in the image, so they fall into many chunks of every scan thread.
      put(tree, `/b${i}/padding.bin`, randomBytes(3 * 1024 * 1024).toString("base64").replace(/[+/]/g, "x"));
      const path = i % 2 === 0 ? `/b${i}/zz/id_ed25519` : `/b${i}/zz/notes.txt`;
      put(tree, path, i % 2 === 0 ? sshKey(keys, `k${i}`) : `keep this safe:\n${sshKey(keys, `k${i}`)}`);
      paths.push(path);
    }
    const image = join(dir, "flood.raw");
    execFileSync("mke2fs", ["-q", "-t", "ext4", "-d", tree, image, "96M"]);
    const result = await auditImage(image, { failOn: "critical" });
    const keyPaths = result.findings.filter((f) => f.rule.id === "private-key").map((f) => (f.location.kind === "file" ? f.location.path : "")).sort();
    assert.deepEqual(keyPaths, paths.sort());
  });

  it("a limit reached is a finding that fails the audit, and only a baseline entry naming it lets it pass", async () => {
    const tree = join(dir, "bomb");
    // Decompresses to 64 MiB of zeros and then a password: past the (lowered) limit, never read.
    put(tree, "/var/log/app.log.1.gz", gzipSync(Buffer.concat([Buffer.alloc(64 * 1024 * 1024), Buffer.from("\ndb_password = Zq8vLm2PnR4tY\n")])));
    const limits = { decompressedBytes: 16 * 1024 * 1024 };
    const result = await auditImage(tree, { failOn: "critical", limits });
    const gap = result.findings.find((f) => f.rule.id === "audit-incomplete");
    assert.ok(gap !== undefined, JSON.stringify(result.findings));
    assert.deepEqual(gap.location, { kind: "file", path: "/var/log/app.log.1.gz" });
    assert.match(gap.message, /decompressed-size/);
    assert.equal(auditFails(result), true, "an incomplete audit fails even at --fail-on critical");
    const baseline = parseBaseline("b.yaml", "accept:\n  - {rule: audit-incomplete, path: /var/log/app.log.1.gz, reason: a known bomb}\n");
    const accepted = await auditImage(tree, { failOn: "critical", limits, baseline });
    assert.equal(auditFails(accepted), false);
    assert.equal(accepted.accepted.length, 1);
  });

  it("a raw scan that reaches its candidate limit says so in a failing finding", async () => {
    const tree = join(dir, "many");
    // Candidates that pass the quick judge (they look like real passwords in a configuration file).
    put(tree, "/etc/app/many.conf", Array.from({ length: 5000 }, (_, i) => `db_password = Zq8vLm2PnR${i}`).join("\n"));
    const image = join(dir, "many.raw");
    execFileSync("mke2fs", ["-q", "-t", "ext4", "-d", tree, image, "16M"]);
    const result = await auditImage(image, { failOn: "critical", limits: { rawCandidates: 1000 } });
    const gap = result.findings.find((f) => f.rule.id === "audit-incomplete");
    assert.ok(gap !== undefined, JSON.stringify(result.findings.map((f) => f.rule.id)));
    assert.match(gap.message, /raw-candidates/);
    assert.equal(auditFails(result), true);
  });
});
