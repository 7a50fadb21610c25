import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Redactor } from "./redact.js";

describe("Redactor", () => {
  const redactor = new Redactor();
  redactor.addSecret("hunter2-very-secret");

  it("removes private key blocks, access keys, tokens and registered secrets", () => {
    const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
    const text = `key: ${key} id AKIAIOSFODNN7EXAMPLE gh ghp_${"a".repeat(36)} pw hunter2-very-secret`;
    const out = redactor.redact(text);
    assert.equal(out, "key: [redacted] id [redacted] gh [redacted] pw [redacted]");
  });

  it("keeps the name of an assigned secret and hides its value", () => {
    assert.equal(redactor.redact("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG"), "aws_secret_access_key = [redacted]");
    assert.equal(redactor.redact('password: "correct horse"'), "password: [redacted]");
    assert.equal(redactor.redact("DB_PASSWORD=TopSecretPw9 client_secret: Zq8vLm2"), "DB_PASSWORD=[redacted] client_secret: [redacted]");
    assert.equal(redactor.redact('{"db_password": "Hunter2"}'), '{"db_password": [redacted]}');
  });

  it("leaves ordinary text alone", () => {
    assert.equal(redactor.redact("==> [1.0s] 3/8 provision"), "==> [1.0s] 3/8 provision");
    // A schema's or a config's structure under a secret-sounding key is not a secret.
    assert.equal(redactor.redact('"get_password": false,'), '"get_password": false,');
    assert.equal(redactor.redact('"password_policy": {'), '"password_policy": {');
  });
});

describe("Redactor, a key in a failing command's last lines of stderr", () => {
  it("masks the end of a key whose BEGIN line was cut off", () => {
    const message = "provisioner 1 failed: exited with code 1\n  last lines of stderr:\n    MIIEowIBAAKCAQEAx1nqQoPz\n    q9Wm3Zb+Tn/R0s4vH7cJ==\n    -----END PRIVATE KEY-----\n    cat: done";
    assert.equal(new Redactor().redact(message), "provisioner 1 failed: exited with code 1\n  last lines of stderr:\n[redacted]\n    cat: done");
  });
});
