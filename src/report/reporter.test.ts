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

/** What each renderer printed for a command's output lines: the text lines and the JSON lines as written. */
function printed(secrets: readonly string[], output: readonly string[], source = "provisioner 1 (shell)"): { text: string[]; json: string[]; jsonLines: string[] } {
  const text: string[] = [];
  const json: string[] = [];
  for (const report of [new TextReporter((l) => text.push(l)), new JsonReporter((l) => json.push(l))]) {
    for (const secret of secrets) report.redactor.addSecret(secret);
    for (const line of output) report.output(source, line);
  }
  const jsonLines = json.map((l) => (JSON.parse(l) as { line: string }).line);
  return { text: text.map((l) => l.replace(`    ${source}: `, "")), json, jsonLines };
}

function assertMasked(result: { text: string[]; json: string[]; jsonLines: string[] }, expected: readonly string[], hidden: readonly string[]): void {
  assert.deepEqual(result.text, expected, "text output");
  assert.deepEqual(result.jsonLines, expected, "--json output");
  for (const written of [...result.text, ...result.json]) {
    for (const fragment of hidden) assert.ok(!written.includes(fragment), `${fragment} is visible in ${written}`);
  }
}

describe("redaction of a command's output stream, in text and --json alike", () => {
  it("masks every line of a secret that holds newlines (output arrives a line at a time)", () => {
    const secret = "first-line-of-it\n  second-line-too\r\nok";
    const result = printed([secret], ["got first-line-of-it", "  second-line-too", "ok done"]);
    assertMasked(result, ["got [redacted]", "  [redacted]", "ok done"], ["first-line-of-it", "second-line-too"]);
  });

  it("masks a private key printed line by line by a failing command, and shows what follows it", () => {
    const key = ["-----BEGIN RSA PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED", "DEK-Info: AES-128-CBC,0123ABCD", "", "MIIEowIBAAKCAQEAx1nqQoPzL7dF8kY2", "  q9Wm3Zb+Tn/R0s4vH7cJ8eK1uL==", "-----END RSA PRIVATE KEY----- trailing text"];
    const result = printed([], ["cat: showing /root/.ssh/id_rsa", ...key, "error: the command failed with exit code 1"]);
    assertMasked(
      result,
      ["cat: showing /root/.ssh/id_rsa", "[redacted]", "[redacted]", "[redacted]", "", "[redacted]", "[redacted]", "[redacted] trailing text", "error: the command failed with exit code 1"],
      ["MIIEowIBAAKCAQEA", "q9Wm3Zb", "0123ABCD", "END RSA"],
    );
  });

  it("stops masking when a key is cut off and the command prints something else", () => {
    const result = printed([], ["-----BEGIN OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU", "error: broken pipe, 3 lines written", "c2VlIHRoZSBsb2c"]);
    assertMasked(result, ["[redacted]", "[redacted]", "error: broken pipe, 3 lines written", "c2VlIHRoZSBsb2c"], ["b3BlbnNzaC1rZXkt"]);
  });

  it("keeps a key's lines in one source's stream: another source's output is not masked", () => {
    const text: string[] = [];
    const report = new TextReporter((l) => text.push(l));
    report.output("a", "-----BEGIN EC PRIVATE KEY-----");
    report.output("b", "Zm9vYmFyYmF6cXV4");
    report.output("a", "MHcCAQEEIBkg4LVWM9nuwNSk");
    assert.deepEqual(text, ["    a: [redacted]", "    b: Zm9vYmFyYmF6cXV4", "    a: [redacted]"]);
  });

  it("masks a secret as `set -x` quotes it ('a'\\''b')", () => {
    const result = printed(["it's-a-s3cret"], ["+ curl -u 'admin:it'\\''s-a-s3cret' https://example.com/api"]);
    assertMasked(result, ["+ curl -u 'admin:[redacted]' https://example.com/api"], ["s3cret"]);
  });

  it("masks a secret base64-encoded (standard and URL-safe, with or without padding, alone or inside Basic auth)", () => {
    const secret = "p>>>ss???w0rd~";
    const standard = Buffer.from(secret).toString("base64");
    const urlSafe = Buffer.from(secret).toString("base64url");
    assert.deepEqual([standard, urlSafe], ["cD4+PnNzPz8/dzByZH4=", "cD4-PnNzPz8_dzByZH4"]);
    const basic = Buffer.from(`administrator:${secret}`).toString("base64");
    const result = printed([secret], [`b64 ${standard}`, `b64 ${standard.slice(0, -1)}`, `b64url ${urlSafe}=`, `b64url ${urlSafe}`, `Authorization: Basic ${basic}`]);
    // The encoded administrator: and the groups it shares with the secret's first and last bytes stay.
    const expected = ["b64 [redacted]", "b64 [redacted]", "b64url [redacted]", "b64url [redacted]", "Authorization: Basic YWRtaW5pc3RyYXRvcjpw[redacted]fg=="];
    assertMasked(result, expected, ["PnNzPz8", "PnNzPz8_", "Pj4+c3M/Pz93MHJk"]);
  });

  it("masks a secret URL-encoded and JSON-escaped", () => {
    const secret = 'p@ss w/rd&"more"';
    const result = printed([secret], [
      `GET https://db.example.com/login?pw=${encodeURIComponent(secret)}&x=1`,
      `form pw=${encodeURIComponent(secret).replaceAll("%20", "+")}`,
      `{"value":${JSON.stringify(secret)}}`,
    ]);
    assertMasked(result, ["GET https://db.example.com/login?pw=[redacted]&x=1", "form pw=[redacted]", '{"value":"[redacted]"}'], ["p%40ss", "w%2Frd", 'ss w/rd&\\"more']);
  });

  it("leaves values that were not registered, and ordinary words, visible", () => {
    const lines = ["Reading package lists... Done", "-----BEGIN CERTIFICATE-----", "MIIBszCCAVmgAwIBAgIU", "base64 aGVsbG8gd29ybGQ=", "url a%40b%20c", "+ echo 'it'\\''s fine'", "-----END CERTIFICATE-----", "a%40b line-one-of"];
    const result = printed(["hunter2-registered", "line-one-of-it\nline-two-of-it"], lines);
    assertMasked(result, lines, []);
  });
});
