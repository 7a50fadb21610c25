import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../test/helpers/temp.js";
import { main } from "./main.js";

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const template = `name: demo
variables:
  password: {default: s3cret-value-123, sensitive: true}
  suite: bookworm
builders:
  - type: local
    base: {mmdebstrap: {suite: "\${{ var.suite }}"}}
provisioners:
  - type: shell
    env: {PASSWORD: "\${{ var.password }}"}
    inline: [echo hi]
`;

async function templateFile(text = template): Promise<string> {
  const file = join(await tempDirectory(), "kiln.yaml");
  await writeFile(file, text);
  return file;
}

describe("kiln CLI", () => {
  it("validate says a good template is valid", async () => {
    const file = await templateFile();
    const run = await cli("validate", file);
    assert.deepEqual(run, { code: 0, out: `${file}: valid (1 builder, 1 provisioner)`, err: "" });
  });

  it("validate prints every problem with file:line:col and exits 2, with no stack trace", async () => {
    const file = await templateFile(template.replace("type: shell", "type: shel").replace('suite: "${{ var.suite }}"', "suite: [bookworm]"));
    const run = await cli("validate", file);
    assert.equal(run.code, 2);
    assert.equal(run.err, [
      "error: template has 2 problems:",
      `${file}:7:32 builders.0.base.mmdebstrap.suite: must be a string, not a list`,
      `${file}:9:11 provisioners.0.type: unknown provisioner type "shel"; did you mean "shell"? (one of: shell, file, powershell, windows-restart, shell-local)`,
    ].join("\n"));
  });

  it("inspect prints resolved values with --var applied and sensitive values hidden", async () => {
    const run = await cli("inspect", await templateFile(), "--var", "suite=trixie");
    assert.equal(run.code, 0, run.err);
    assert.match(run.out, /suite: trixie/);
    assert.match(run.out, /source: command line/);
    assert.ok(!run.out.includes("s3cret-value-123"), run.out);
    assert.match(run.out, /value: "\[sensitive\]"/);
    assert.match(run.out, /PASSWORD: \[redacted\]/);
  });

  it("schema prints a JSON Schema that knows the template's keys", async () => {
    const run = await cli("schema");
    const schema = JSON.parse(run.out) as { properties: Record<string, unknown>; required: string[]; additionalProperties: boolean };
    assert.deepEqual(schema.required.sort(), ["builders", "name"]);
    assert.ok("provisioners" in schema.properties && "variables" in schema.properties);
    assert.equal(schema.additionalProperties, false);
  });

  it("a missing template file is one clear error", async () => {
    const run = await cli("validate", "/nonexistent/kiln.yaml");
    assert.equal(run.code, 2);
    assert.equal(run.err, "error: cannot read template /nonexistent/kiln.yaml: no such file\n  (pass the path of a .yaml or .json template)");
  });

  it("a bad flag value exits 2", async () => {
    const run = await cli("build", await templateFile(), "--on-error", "ignore");
    assert.equal(run.code, 2);
    assert.match(run.err, /argument 'ignore' is invalid. Allowed choices are cleanup, abort/);
  });

  it("--var in the wrong form is named", async () => {
    const run = await cli("validate", await templateFile(), "--var", "suite");
    assert.equal(run.code, 2);
    assert.match(run.err, /--var "suite" is not name=value/);
  });
});
