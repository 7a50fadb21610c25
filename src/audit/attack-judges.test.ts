import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { auditImage } from "./audit-image.js";
import { scanContent } from "./judging/content-scanner.js";

// Assembled at run time: this file holds no secret. AWS's documented example key id is public.
const secret = ["Zq8LmN3pR7tVw2x9Kb4H", "c6Jd1Fg5Ys0Ae3Ui7OoP"].join("");
const exampleId = "AKIAIOSFODNN7EXAMPLE";

describe("a decoy cannot talk the judges out of a secret", () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-attack-judges-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reports a secret access key beside AWS's example key id (the example id is no leak, the secret is)", async () => {
    const text = `[default]\naws_access_key_id = ${exampleId}\naws_secret_access_key = ${secret}\n`;
    assert.deepEqual(scanContent(text, "config").map((m) => m.rule.id), ["aws-credentials"]);
    const tree = join(dir, "tree");
    mkdirSync(join(tree, "etc/app"), { recursive: true });
    writeFileSync(join(tree, "etc/app/config.ini"), text);
    assert.deepEqual((await auditImage(tree, { failOn: "critical" })).findings.map((f) => `${f.rule.id} ${f.location.kind === "file" ? f.location.path : ""}`), ["aws-credentials /etc/app/config.ini"]);
  });

  it("still ignores AWS's documented example pair", () => {
    assert.deepEqual(scanContent(`aws_access_key_id = ${exampleId}\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n`, "config"), []);
  });

  it("still reports a key id and its secret once, as one pair", () => {
    const id = ["AKIA", "Q3ZK7M2XWPL5RT4N"].join("");
    assert.deepEqual(scanContent(`aws_access_key_id = ${id}\naws_secret_access_key = ${secret}\n`, "config").map((m) => m.rule.id), ["aws-credentials"]);
  });
});
