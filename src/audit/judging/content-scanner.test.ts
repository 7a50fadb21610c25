import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { scanContent, type ContentContext } from "./content-scanner.js";
import { StreamScanner } from "../candidates/stream-scanner.js";

const ids = (text: string, context: ContentContext = "config"): string[] => scanContent(text, context).map((m) => m.rule.id);

// Assembled at run time so that this file itself holds no credential-shaped string.
const keyId = ["AKIA", "Q3EGUKJP4XM2ZL7V"].join("");
const secretKey = ["wJ8rXUtnFEMI", "K7MDENGbPxRfiCY", "9sF2kQzLpWq3T"].join("");
const githubToken = ["ghp_", "R4nd0mT0k3nV4lu3sXyZ", "aBcDeFgHiJkLmNoP"].join("");

describe("content scanner", () => {
  const keys: Record<string, string> = {};

  before(async () => {
    const dir = await tempDirectory();
    const make = (name: string, args: string[]): void => {
      execFileSync("ssh-keygen", ["-q", "-f", join(dir, name), "-C", "builder@example", ...args]);
      keys[name] = readFileSync(join(dir, name), "latin1");
    };
    make("ed25519", ["-t", "ed25519", "-N", ""]);
    make("ed25519-pass", ["-t", "ed25519", "-N", "correct horse"]);
    make("rsa-pem", ["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""]);
    keys["pkcs8"] = execFileSync("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], { encoding: "latin1" });
  });

  it("finds unencrypted OpenSSH, PEM RSA and PKCS#8 keys, and tells encrypted ones apart", () => {
    assert.deepEqual(ids(keys["ed25519"] ?? "", "text"), ["private-key"]);
    assert.deepEqual(ids(keys["rsa-pem"] ?? "", "text"), ["private-key"]);
    assert.deepEqual(ids(keys["pkcs8"] ?? "", "binary"), ["private-key"]);
    assert.deepEqual(ids(keys["ed25519-pass"] ?? "", "text"), ["encrypted-private-key"]);
  });

  it("does not take the marker quoted inside a program for a key", () => {
    const program = readFileSync(execFileSync("sh", ["-c", "command -v ssh"], { encoding: "utf8" }).trim(), "latin1");
    assert.ok(program.includes("-----BEGIN OPENSSH PRIVATE KEY-----"), "the stock ssh binary quotes the marker");
    assert.deepEqual(ids(program, "binary"), []);
  });

  it("never puts key material or a secret in the excerpt", () => {
    const key = keys["ed25519"] ?? "";
    const body = key.split("\n")[1] ?? "";
    const text = `${key}\naws_access_key_id = ${keyId}\naws_secret_access_key = ${secretKey}\ntoken = ${githubToken}\n`;
    const found = scanContent(text, "config");
    assert.deepEqual(found.map((m) => m.rule.id), ["private-key", "aws-credentials", "token"], "the key id and its secret are one finding");
    for (const m of found) {
      for (const secret of [body.slice(0, 20), keyId.slice(4), secretKey.slice(0, 12), githubToken.slice(4, 16)]) {
        assert.ok(!m.excerpt.includes(secret) && !m.message.includes(secret), `${m.rule.id}: ${m.excerpt} / ${m.message}`);
      }
    }
  });

  it("pairs an AWS key id with its secret, and ignores AWS's documented example", () => {
    assert.deepEqual(ids(`key=${keyId}\nsecret_key=${secretKey}\n`, "text"), ["aws-credentials"]);
    assert.deepEqual(ids(`only the id ${keyId} here`, "text"), ["aws-key-id"]);
    assert.deepEqual(ids("AKIAIOSFODNN7EXAMPLE", "text"), []);
    // A hex digest beside a key id is not its secret.
    assert.deepEqual(ids(`${keyId} 4f7a1c0de5b2a9c8d7e6f5a4b3c2d1e0f9a8b7c6`, "text"), ["aws-key-id"]);
  });

  it("finds GitHub and Slack tokens but not placeholders", () => {
    assert.deepEqual(ids(`GITHUB_TOKEN ${githubToken}`, "text"), ["token"]);
    assert.deepEqual(ids(`slack ${["xoxb", "2301948576", "Zq8LmN3pR7tVw"].join("-")}`, "text"), ["token"]);
    assert.deepEqual(ids(`ghp_${"x".repeat(36)}`, "text"), []);
  });

  it("judges password assignments only in configuration, skipping comments and placeholders", () => {
    assert.deepEqual(ids("db_password = s3cr3t-Value\n"), ["secret-assignment"]);
    assert.deepEqual(ids("client_secret: \"k9Q2-xx81\"\n"), ["secret-assignment"]);
    assert.deepEqual(ids("# password = example\n"), []);
    assert.deepEqual(ids("password = ${DB_PASSWORD}\n"), []);
    assert.deepEqual(ids("password: changeme\n"), []);
    assert.deepEqual(ids("challengePassword = A challenge password\n"), []);
    assert.deepEqual(ids("db_password = s3cr3t-Value\n", "text"), []);
    assert.deepEqual(ids("db_password = s3cr3t-Value\n", "unallocated"), ["secret-assignment"]);
  });

  it("finds a secret split across chunks exactly once, with its line", () => {
    const text = `${"filler line\n".repeat(5000)}api_password = Tr0ub4dor&3\n${"more\n".repeat(5000)}`;
    const bytes = Buffer.from(text, "latin1");
    for (const size of [7, 4096, 65536]) {
      const scanner = new StreamScanner("config");
      for (let i = 0; i < bytes.length; i += size) scanner.push(bytes.subarray(i, i + size));
      const found = scanner.end();
      assert.equal(found.length, 1, `chunks of ${size}`);
      assert.equal(found[0]?.line, 5001);
      assert.equal(found[0]?.offset, text.indexOf("api_password") + "api_".length);
    }
  });
});
