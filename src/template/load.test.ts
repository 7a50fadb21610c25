import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../test/helpers/temp.js";
import { ConfigError, formatProblem } from "../errors.js";
import { loadTemplate, type LoadOptions } from "./load.js";
import { diskOf } from "./schema.js";

const noInputs: LoadOptions = { vars: [], varFiles: [], env: {} };

async function templateFile(text: string, name = "kiln.yaml"): Promise<string> {
  const dir = await tempDirectory();
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

/** The problems a template has, formatted as the CLI prints them, without the directory. */
async function problems(text: string, options: LoadOptions = noInputs): Promise<string[]> {
  const file = await templateFile(text);
  try {
    await loadTemplate(file, options);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.exitCode, 2);
    return error.problems.map((p) => formatProblem(p).replace(`${file}:`, ""));
  }
  assert.fail("the template was accepted");
}

const valid = `name: demo
builders:
  - type: local
    base:
      mmdebstrap:
        suite: bookworm
provisioners:
  - type: shell
    inline: [echo hello]
`;

describe("loadTemplate", () => {
  it("accepts a valid template and fills in defaults", async () => {
    const loaded = await loadTemplate(await templateFile(valid), noInputs);
    const builder = loaded.template.builders[0];
    assert.ok(builder?.type === "local");
    assert.equal(builder.base.mmdebstrap?.variant, "minbase");
    assert.deepEqual(builder.image, { size: "auto", formats: ["raw"], label: "root" });
    assert.equal(loaded.template.clean.enabled, true);
    assert.equal(loaded.template.output.directory, "output");
  });

  it("reads JSON templates with positions", async () => {
    const json = JSON.stringify({ name: "demo", builders: [{ type: "local", base: { mmdebstrap: { suite: 12 } } }] }, null, 2);
    const file = await templateFile(json, "kiln.json");
    await assert.rejects(loadTemplate(file, noInputs), (error: ConfigError) => {
      assert.equal(error.problems.length, 1);
      assert.match(formatProblem(error.problems[0]!), /kiln\.json:8:20 builders\.0\.base\.mmdebstrap\.suite: must be a string, not number 12/);
      return true;
    });
  });

  it("reports a missing field at its parent with what to add", async () => {
    assert.deepEqual(await problems("builders:\n  - type: local\n    base: {directory: /}\n"), [
      "1:1 name: is required (add name: of type string)",
    ]);
  });

  it("reports a wrong type with the value it got", async () => {
    const out = await problems(valid.replace("inline: [echo hello]", "inline: echo hello"));
    assert.deepEqual(out, ["9:13 provisioners.0.inline: must be a list, not string \"echo hello\""]);
  });

  it("suggests the key an unknown key was meant to be", async () => {
    const out = await problems(valid.replace("        suite: bookworm", "        suite: bookworm\n        pakages: [vim]"));
    assert.deepEqual(out, ["7:9 builders.0.base.mmdebstrap.pakages: unknown key (did you mean \"packages\"?)"]);
  });

  it("lists the known keys when nothing is close", async () => {
    const out = await problems(`${valid}zzzzzz: 1\n`);
    assert.equal(out.length, 1);
    assert.match(out[0]!, /^10:1 zzzzzz: unknown key \(known keys here: .*builders.*provisioners/);
  });

  it("names an unknown provisioner type and the closest one", async () => {
    const out = await problems(valid.replace("type: shell", "type: shel"));
    assert.deepEqual(out, ["8:11 provisioners.0.type: unknown provisioner type \"shel\"; did you mean \"shell\"? (one of: shell, file, powershell, windows-restart, shell-local)"]);
  });

  it("reports every problem at once, in file order", async () => {
    const text = `name: "bad name!"
builders:
  - type: local
    base: {}
    image: {formats: [raw, iso]}
provisioners:
  - type: file
    source: missing.txt
    destination: relative/path
    mode: 644
`;
    const out = await problems(text);
    assert.deepEqual(out, [
      "1:7 name: must be letters, digits, . _ - (it names the output directory)",
      "4:11 builders.0.base: needs a base root filesystem (set exactly one of mmdebstrap, tarball or directory)",
      "5:28 builders.0.image.formats.1: must be one of \"raw\", \"qcow2\", \"vmdk\", \"vhdx\", \"vhd\", not string \"iso\"",
      "9:18 provisioners.0.destination: must be an absolute path inside the image",
      "10:11 provisioners.0.mode: must be a string, not number 644",
    ]);
  });

  it("checks shell sources, execute_command placeholders and download paths", async () => {
    const text = `name: checks
builders:
  - type: local
    base: {directory: .}
provisioners:
  - type: shell
    inline: [echo]
    scripts: [a.sh]
  - type: shell
    inline: [echo]
    execute_command: "sudo {{ .Vars }} {{.Command}}"
  - type: shell
    inline: [echo]
    execute_command: "sudo sh -c 'true'"
  - type: file
    direction: download
    source: var/log/build.log
    destination: logs/
    mode: "0600"
`;
    assert.deepEqual(await problems(text), [
      "6:5 provisioners.0: needs exactly one of inline, script or scripts (give a list of commands as inline, a file as script, or files as scripts)",
      "11:22 provisioners.1.execute_command: has {{ .Command }}; only {{ .Path }}, {{ .Vars }} and {{ .EnvVarFile }} are filled in",
      "14:22 provisioners.2.execute_command: never runs the script: it has no {{ .Path }} (e.g. sudo -n sh -c '{{ .Vars }} {{ .Path }}')",
      "17:13 provisioners.3.source: must be an absolute path inside the image",
      "19:11 provisioners.3.mode: applies to uploads only (remove it, or set the mode on this machine after the build)",
    ]);
  });

  it("refuses only/except naming a builder that is not there", async () => {
    const text = `name: filters
builders:
  - type: local
    name: tree
    base: {directory: .}
provisioners:
  - type: shell
    inline: [echo]
    only: [tre]
`;
    assert.deepEqual(await problems(text), ["9:12 provisioners.0.only.0: names no builder \"tre\" (did you mean \"tree\"?) (builders are named tree, local)"]);
  });

  it("refuses two builders with the same name", async () => {
    const text = "name: demo\nbuilders:\n  - {type: local, name: a, base: {directory: /}}\n  - {type: local, name: a, base: {directory: /}}\n";
    assert.deepEqual(await problems(text), ["4:25 builders.1.name: another builder is already named \"a\" (give each builder its own name)"]);
  });

  it("refuses a mirror URL with credentials in it", async () => {
    const out = await problems(valid.replace("suite: bookworm", "suite: bookworm\n        mirror: https://user:pw@mirror.example/debian"));
    assert.equal(out.length, 1);
    assert.match(out[0]!, /^7:17 builders\.0\.base\.mmdebstrap\.mirror: must not carry credentials .*\(use apt's \/etc\/apt\/auth\.conf\.d on this machine instead\)$/);
  });

  it("points at a YAML syntax error", async () => {
    const out = await problems("name: demo\nbuilders: [\n  - type: local\n");
    assert.equal(out.length >= 1, true);
    assert.match(out[0]!, /^\d+:\d+ .*\(fix the YAML\/JSON syntax\)$/);
  });

  it("checks that files the template names exist", async () => {
    const out = await problems(valid.replace("inline: [echo hello]", "script: scripts/setup.sh"));
    assert.equal(out.length, 1);
    assert.match(out[0]!, /^9:13 provisioners\.0\.script: .*scripts\/setup\.sh does not exist \(paths are relative to the template's directory\)$/);
  });
});

describe("variables and functions", () => {
  const withVars = `name: demo
variables:
  suite: bullseye
  size: 1073741824
  token: {sensitive: true}
builders:
  - type: local
    base:
      mmdebstrap:
        suite: \${{ var.suite }}
    image:
      size: \${{ var.size }}
provisioners:
  - type: shell
    env: {TOKEN: "\${{ var.token }}", HOME_DIR: "\${{ env.KILN_TEST_HOME }}", STAMP: "t-\${{ timestamp }}", ID: "\${{ uuid }}"}
    inline: ['echo "\${SHELL_VAR}" $\${{ literal }}']
`;

  it("resolves defaults, environment, var files and --var in that order", async () => {
    const file = await templateFile(withVars);
    const varFile = join(file, "..", "vars.yaml");
    await writeFile(varFile, "suite: trixie\ntoken: from-file\n");
    const loaded = await loadTemplate(file, {
      vars: ["suite=bookworm"],
      varFiles: [varFile],
      env: { KILN_VAR_suite: "buster", KILN_VAR_token: "from-env", KILN_TEST_HOME: "/home/x" },
      now: new Date("2026-01-02T03:04:05Z"),
    });
    const builder = loaded.template.builders[0]!;
    assert.ok(builder.type === "local");
    assert.equal(builder.base.mmdebstrap?.suite, "bookworm");
    assert.equal(loaded.variables.get("suite")?.source, "command line");
    assert.equal(loaded.variables.get("token")?.value, "from-file");
    assert.equal(loaded.variables.get("token")?.sensitive, true);
    assert.equal(builder.image.size, 1073741824, "a value that is one expression keeps the variable's type");
    const shell = loaded.template.provisioners[0];
    assert.ok(shell?.type === "shell");
    assert.equal(shell.env.HOME_DIR, "/home/x");
    assert.equal(shell.env.STAMP, "t-1767323045");
    assert.match(shell.env.ID ?? "", /^[0-9a-f-]{36}$/);
    assert.deepEqual(shell.inline, ['echo "${SHELL_VAR}" ${{ literal }}'], "shell ${VAR} and escaped $${{ stay as they are");
  });

  it("reports unknown variables, functions, unset environment and missing values together", async () => {
    const text = withVars
      .replace("${{ var.suite }}", "${{ var.suit }}")
      .replace("t-${{ timestamp }}", "${{ timestmp }}");
    const out = await problems(text, { vars: ["sute=x"], varFiles: [], env: {} });
    assert.deepEqual(out, [
      "2:1 variables: --var sets undeclared variable \"sute\" (did you mean \"suite\"?) (declare it under variables:, or drop it from --var)",
      "5:10 variables.token: variable \"token\" has no value (give it a default, pass --var token=…, or set KILN_VAR_token)",
      "10:16 builders.0.base.mmdebstrap.suite: unknown variable \"suit\" (did you mean \"suite\"?) (declare it under variables:)",
      "15:48 provisioners.0.env.HOME_DIR: environment variable KILN_TEST_HOME is not set (set KILN_TEST_HOME, or use a variable with a default)",
      "15:84 provisioners.0.env.STAMP: unknown function \"timestmp\" in ${{ timestmp }} (did you mean \"timestamp\"?) (one of: var.NAME, env.NAME, timestamp, uuid, isotime \"LAYOUT\")",
    ]);
  });
});

describe("bad input a template can carry", () => {
  it("refuses YAML aliases that expand past reason (billion laughs) as one problem, not a crash", async () => {
    const lines = ["name: bomb", "variables:", "  a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) lines.push(`  v${i}: &v${i} [${Array.from({ length: 10 }, () => (i === 1 ? "*a" : `*v${i - 1}`)).join(", ")}]`);
    lines.push("builders:", "  - type: local", "    base: {mmdebstrap: {suite: bookworm}}");
    const found = await problems(`${lines.join("\n")}\n`);
    assert.equal(found.length, 1);
    assert.match(found[0] ?? "", /^\d+:\d+ YAML aliases here expand to far more than a template holds \(an alias bomb\?\)/);
  });

  it("writes a bootable disk when the base lists a kernel, a bare filesystem otherwise, and refuses boot without a kernel", async () => {
    const kernel = valid.replace("        suite: bookworm\n", "        suite: bookworm\n        packages: [linux-image-cloud-amd64]\n");
    const disk = async (text: string) => { const loaded = await loadTemplate(await templateFile(text), noInputs); const b = loaded.template.builders[0]; return b?.type === "local" ? diskOf(b) : undefined; };
    assert.deepEqual(await disk(kernel), { partitions: "gpt", boot: ["bios", "uefi"], kernel_args: [] });
    assert.deepEqual(await disk(valid), { partitions: "none", boot: [], kernel_args: [] });
    const asked = valid.replace("        suite: bookworm\n", "        suite: bookworm\n    disk: {partitions: gpt}\n");
    assert.deepEqual(await problems(asked), ["6:9 builders.0.base.mmdebstrap.packages: lists no kernel package, and disk.boot asks for a disk that boots (bios, uefi) (add linux-image-cloud-amd64 (or linux-image-amd64) to the packages, or set disk: { partitions: none, boot: [] })"]);
    assert.ok((await problems(valid.replace("        suite: bookworm\n", "        suite: bookworm\n    disk: {partitions: none, boot: [bios]}\n"))).includes("7:36 builders.0.disk.boot: needs partitions: gpt (a bare filesystem has no room for a boot loader) (set partitions: gpt, or boot: [])"));
    assert.match((await problems(`${valid}test: {commands: ["true"]}\n`)).join("\n"), /test: needs a disk that boots, and builder 1 writes a bare filesystem/);
    assert.match((await problems(`${kernel.replace("packages: [linux-image-cloud-amd64]", "packages: [linux-image-cloud-amd64]\n    disk: {partitions: gpt, boot: [uefi]}")}test: {firmware: [bios]}\n`)).join("\n"), /test\.firmware: asks for bios, which builder 1's disk does not boot by/);
    assert.match((await problems(valid.replace("        suite: bookworm\n", "        suite: bookworm\n    disk: {partitions: gpt, boot: [], kernel_args: [\"a b\"]}\n"))).join("\n"), /kernel_args\.0: must be one kernel argument/);
  });

  it("refuses an image size beyond reason, naming the field", async () => {
    assert.deepEqual(await problems(valid.replace("        suite: bookworm\n", "        suite: bookworm\n    image: {size: 99999999T}\n")),
      ["7:19 builders.0.image.size: is beyond what kiln writes (at most 16T) (give the size the image needs, like 8G; auto sizes it to its content)"]);
  });

  it("refuses a size that is not one, or too small, as a problem beside the others (not one bare error)", async () => {
    const withSize = (size: string) => valid.replace("        suite: bookworm\n", `        suite: bookworm\n    image: {size: ${size}}\n`).replace("inline: [echo hello]", "inline: [echo hello]\n    inlne: [typo]");
    for (const size of ["2X", "1e3G", "-1G"]) {
      const found = await problems(withSize(size));
      assert.match(found.join("\n"), /builders\.0\.image\.size: /, size);
      assert.match(found.join("\n"), /provisioners\.0\.inlne: unknown key/, `${size}: the other problem is still reported`);
    }
    for (const size of ["0K", "0.0001K", "1"]) assert.match((await problems(withSize(size))).join("\n"), /builders\.0\.image\.size: is too small for a filesystem/, size);
  });

  it("refuses a template nested thousands of levels deep as one problem", async () => {
    const deep = `name: deep\nbuilders: ${"[".repeat(50_000)}${"]".repeat(50_000)}\n`;
    const found = await problems(deep);
    assert.equal(found.length, 1);
    assert.match(found[0] ?? "", /nests too deeply to be read/);
  });

  it("refuses two builders whose output directories (and build ids) would be the same", async () => {
    const two = "name: demo\nbuilders:\n  - type: local\n    name: \"2\"\n    base: {mmdebstrap: {suite: bookworm}}\n  - type: local\n    base: {mmdebstrap: {suite: bookworm}}\n";
    assert.match((await problems(two)).join("\n"), /builders\.1: gives this builder the output directory of builder 1 \(demo-2-<time>\)/);
    const cased = two.replace("name: \"2\"", "name: east").replace("    base: {mmdebstrap: {suite: bookworm}}\n$", "") + "    name: East\n";
    assert.match((await problems(cased)).join("\n"), /builders\.1\.name: gives this builder the output directory of builder 1 \(demo-east-<time>\)/);
  });

  it("refuses values that would reach mmdebstrap's command line as options", async () => {
    const found = await problems(valid.replace("suite: bookworm", "suite: \"--setup-hook=touch /tmp/pwned\"\n        mirror: \"http://deb.example/ --foo\"\n        components: [\"-x\"]"));
    assert.match(found.join("\n"), /builders\.0\.base\.mmdebstrap\.suite: must be a suite name like bookworm/);
    assert.match(found.join("\n"), /builders\.0\.base\.mmdebstrap\.mirror: must not contain spaces, quotes or backslashes/);
    assert.match(found.join("\n"), /builders\.0\.base\.mmdebstrap\.components\.0: must be an archive component/);
  });

  it("refuses a package whose version would add a host .deb or another package to mmdebstrap's --include", async () => {
    const found = await problems(valid.replace("suite: bookworm", "suite: bookworm\n        packages: [\"curl=1.0,/tmp/evil.deb\", \"openssh-server=1:9.2p1-2+deb12u3\"]"));
    assert.match(found.join("\n"), /builders\.0\.base\.mmdebstrap\.packages\.0: must be a Debian package name/);
    assert.doesNotMatch(found.join("\n"), /packages\.1/);
  });
});
