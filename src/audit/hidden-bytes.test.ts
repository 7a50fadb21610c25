import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { open } from "node:fs/promises";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { auditImage } from "./audit-image.js";
import { scanContent } from "./judging/content-scanner.js";
import type { Finding } from "./finding.js";

// Assembled at run time: this file holds no secret.
const githubToken = ["ghp_", "R4nd0mT0k3nV4lu3sXyZ", "aBcDeFgHiJkLmNoP"].join("");
const slackToken = ["xoxb", "2301948576", "Zq8LmN3pR7tVw"].join("-");

function put(root: string, path: string, content: string | Buffer): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
}

const where = (findings: readonly Finding[]): string[] =>
  findings.map((f) => `${f.rule.id} ${f.location.kind === "file" ? f.location.path : `@${f.location.offset}`}`).sort();

describe("every place a file system keeps bytes is read", { timeout: 5 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-hidden-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("finds keys in extended attributes (in the inode and in an xattr block, every namespace) and in symlink targets", async () => {
    const tree = join(dir, "tree");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "key")]);
    const key = readFileSync(join(dir, "key"), "latin1");
    put(tree, "/srv/small", "nothing here\n");
    put(tree, "/srv/large", "nothing here either\n");
    put(tree, "/srv/trusted", "and nothing here\n");
    execFileSync("setfattr", ["-n", "user.note", "-v", `token ${githubToken}`, join(tree, "srv/small")]);
    // Too large for the inode: mke2fs puts it in an external xattr block.
    execFileSync("setfattr", ["-n", "security.backup", "-v", key, join(tree, "srv/large")]);
    execFileSync("setfattr", ["-n", "trusted.hook", "-v", `slack ${slackToken}`, join(tree, "srv/trusted")]);
    // A target longer than 60 bytes is stored in a data block; a short one in the inode.
    symlinkSync(`/opt/${"x".repeat(70)}/${githubToken}`, join(tree, "srv/long-link"));
    symlinkSync(slackToken, join(tree, "srv/short-link"));
    const image = join(dir, "x.raw");
    execFileSync("mke2fs", ["-q", "-t", "ext4", "-I", "256", "-d", tree, image, "16M"]);
    const expected = ["private-key /srv/large", "token /srv/long-link", "token /srv/short-link", "token /srv/small", "token /srv/trusted"];
    const result = await auditImage(image, { failOn: "critical" });
    assert.deepEqual(where(result.findings), expected);
    const fromTree = await auditImage(tree, { failOn: "critical" });
    assert.deepEqual(where(fromTree.findings), expected);
    const archive = join(dir, "x.tar");
    execFileSync("tar", ["--xattrs", "--xattrs-include=*", "-C", tree, "-cf", archive, "."]);
    assert.deepEqual(where((await auditImage(archive, { failOn: "critical" })).findings), expected);
  });

  it("reads a sparse file by its data only: a token after a 8 GiB hole is found in seconds", async () => {
    const tree = join(dir, "sparse");
    put(tree, "/var/lib/app/disk.img", "head\n");
    execFileSync("truncate", ["-s", "8G", join(tree, "var/lib/app/disk.img")]);
    const handle = await open(join(tree, "var/lib/app/disk.img"), "r+");
    await handle.write(`token: ${githubToken}\n`, 4 * 1024 ** 3);
    await handle.close();
    const started = Date.now();
    const result = await auditImage(tree, { failOn: "critical" });
    assert.deepEqual(where(result.findings), ["token /var/lib/app/disk.img"]);
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
    const image = join(dir, "sparse.raw");
    execFileSync("mke2fs", ["-q", "-t", "ext4", "-d", tree, image, "32M"]);
    const fromImage = Date.now();
    assert.deepEqual(where((await auditImage(image, { failOn: "critical" })).findings), ["token /var/lib/app/disk.img"]);
    assert.ok(Date.now() - fromImage < 10_000, `the image took ${Date.now() - fromImage} ms`);
  });

  it("reads key formats as tools accept them: CRLF and blank lines in PEM, PuTTY v2/v3, PKCS#8, JWK", () => {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "k2")]);
    const openssh = readFileSync(join(dir, "k2"), "latin1");
    const pkcs8 = execFileSync("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], { encoding: "latin1" });
    const encrypted = execFileSync("openssl", ["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:hunter22"], { input: pkcs8, encoding: "latin1" });
    execFileSync("puttygen", [join(dir, "k2"), "-O", "private", "-o", join(dir, "k2.ppk")]);
    const ppk = readFileSync(join(dir, "k2.ppk"), "latin1");
    const jwk = JSON.stringify({ kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", d: "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI" });
    const cases: [string, string, string][] = [
      ["CRLF", openssh.replace(/\n/g, "\r\n"), "private-key"],
      ["blank line", pkcs8.replace(/\n(?=-----END)/, "\n\n").replace(/^(-----BEGIN[^\n]*\n)/, "$1\n"), "private-key"],
      ["PKCS#8 encrypted", encrypted, "encrypted-private-key"],
      ["PuTTY", ppk, "private-key"],
      ["JWK", `{"keys": [${jwk}]}`, "private-key"],
      ["JWK, pretty", JSON.stringify(JSON.parse(jwk), null, 2), "private-key"],
      // RFC 7517 A.3 / RFC 7518 6.4: a symmetric key's secret is "k", and it has no "d".
      ["JWK, symmetric (oct)", JSON.stringify({ keys: [{ kty: "oct", alg: "HS256", k: "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow" }] }), "private-key"],
    ];
    for (const [name, text, rule] of cases) assert.deepEqual(scanContent(text, "text").map((m) => m.rule.id), [rule], name);
    const publicJwk = JSON.stringify({ kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" });
    assert.deepEqual(scanContent(publicJwk, "text"), [], "a public JWK is not a key");
    assert.deepEqual(scanContent(JSON.stringify({ kty: "EC", k: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }), "text"), [], "\"k\" is a secret only in an oct key");
  });
});
