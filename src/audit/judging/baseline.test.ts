import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { KilnError } from "../../errors.js";
import { applyBaseline, loadBaseline, parseBaseline, type Baseline } from "./baseline.js";
import type { Finding, FindingLocation } from "../finding.js";
import { rules, type Rule } from "../rules.js";

function invalid(text: string, ...lines: string[]) {
  assert.throws(() => parseBaseline("kiln-baseline.yaml", text), (error: unknown) => {
    assert.ok(error instanceof KilnError);
    assert.equal(error.code, "KILN_BASELINE_INVALID");
    assert.equal(error.exitCode, 2);
    assert.deepEqual(error.message.split("\n").slice(1), lines);
    return true;
  });
}

const finding = (rule: Rule, location: FindingLocation): Finding => ({ rule, severity: rule.severity, location, message: rule.title });
const file = (path: string): FindingLocation => ({ kind: "file", path });

describe("loadBaseline", () => {
  it("reads YAML, keeping where each entry is for reports", async () => {
    const path = join(await tempDirectory(), "kiln-baseline.yaml");
    await writeFile(path, [
      "# findings we have looked at",
      "accept:",
      "  - rule: shell-history",
      "    path: /root/.bash_history",
      "    reason: written by the CI user; nothing typed by hand",
      "  - rule: deleted-file",
      "    offset: 0x200000",
      "    reason: the package cache, deleted on purpose",
      "  - { rule: machine-id, reason: systemd-firstboot sets it again }",
      "",
    ].join("\n"));
    assert.deepEqual(await loadBaseline(path), {
      file: path,
      entries: [
        { rule: "shell-history", path: "/root/.bash_history", reason: "written by the CI user; nothing typed by hand", where: `${path}:3` },
        { rule: "deleted-file", offset: 2097152, reason: "the package cache, deleted on purpose", where: `${path}:6` },
        { rule: "machine-id", reason: "systemd-firstboot sets it again", where: `${path}:9` },
      ],
    });
  });

  it("reads JSON", () => {
    const json = JSON.stringify({ accept: [{ rule: "private-key", path: "/etc/ssl/private/*.pem", reason: "test CA, public anyway" }] }, null, 2);
    assert.deepEqual(parseBaseline("b.json", json).entries, [{ rule: "private-key", path: "/etc/ssl/private/*.pem", reason: "test CA, public anyway", where: "b.json:3" }]);
  });

  it("says when the file cannot be read", async () => {
    const path = join(await tempDirectory(), "missing.yaml");
    await assert.rejects(loadBaseline(path), (error: unknown) => {
      assert.ok(error instanceof KilnError);
      assert.equal(error.code, "KILN_BASELINE_UNREADABLE");
      assert.equal(error.message, `cannot read baseline ${path}: no such file`);
      assert.equal(error.exitCode, 2);
      return true;
    });
  });

  it("suggests the nearest rule id for a misspelled one, and lists them all otherwise", () => {
    invalid("accept:\n  - rule: shell-histroy\n    reason: r\n",
      'kiln-baseline.yaml:2:11 accept.0.rule: unknown rule "shell-histroy" (did you mean "shell-history"?)');
    invalid("accept:\n  - rule: banana\n    reason: r\n",
      `kiln-baseline.yaml:2:11 accept.0.rule: unknown rule "banana" (kiln's rules are ${Object.values(rules).map((r) => r.id).join(", ")})`);
  });

  it("reports every problem at once, each at its line and column", () => {
    invalid([
      "accept:",
      "  - rule: private-key",
      "    paths: /root/.ssh/id_rsa",
      "    reason: r",
      "  - path: root/.bash_history",
      "    rule: shell-history",
      "  - rule: deleted-file",
      "    offset: -1",
      "    path: /var/cache/",
      "    reason: r",
      "  - just a string",
      "  - rule: nope",
      "    reason: r",
    ].join("\n"),
    'kiln-baseline.yaml:3:5 accept.0.paths: unknown key "paths" (did you mean "path"?)',
    'kiln-baseline.yaml:5:5 accept.1.reason: the reason is missing (say why this is acceptable, for whoever reads the baseline next)',
    'kiln-baseline.yaml:5:11 accept.1.path: "root/.bash_history" is not absolute (paths are absolute inside the image, e.g. /root/.bash_history)',
    "kiln-baseline.yaml:8:13 accept.2.offset: must be a byte offset (a whole number, 0 or more) (copy it from the finding, e.g. offset: 1048576)",
    "kiln-baseline.yaml:8:13 accept.2.offset: an entry names a path or an offset, not both",
    'kiln-baseline.yaml:9:11 accept.2.path: "/var/cache/" ends with a slash (to accept everything under a directory, write /var/cache/**)',
    "kiln-baseline.yaml:11:5 accept.3: must be a mapping with rule, reason, and path or offset " +
      "(e.g. accept: [{ rule: shell-history, path: /root/.bash_history, reason: built by CI, nothing typed }])",
    `kiln-baseline.yaml:12:11 accept.4.rule: unknown rule "nope" (kiln's rules are ${Object.values(rules).map((r) => r.id).join(", ")})`);
  });

  it("rejects a file that is not a baseline, or not YAML", () => {
    invalid("- rule: shell-history\n", "kiln-baseline.yaml:1:1 a baseline must be a mapping with an accept list " +
      "(e.g. accept: [{ rule: shell-history, path: /root/.bash_history, reason: built by CI, nothing typed }])");
    invalid("acept: []\n", 'kiln-baseline.yaml:1:1 acept: unknown key "acept" (did you mean "accept"?)',
      "kiln-baseline.yaml:1:1 accept: the accept list is missing (e.g. accept: [{ rule: shell-history, path: /root/.bash_history, reason: built by CI, nothing typed }])");
    assert.throws(() => parseBaseline("b.yaml", "accept: [\n"), /^KilnError: baseline has 1 problem:\nb\.yaml:2:1 /);
  });
});

describe("applyBaseline", () => {
  const baseline = (...entries: Omit<Baseline["entries"][number], "where" | "reason">[]): Baseline =>
    ({ file: "b.yaml", entries: entries.map((e, i) => ({ ...e, reason: `reason ${i}`, where: `b.yaml:${i + 1}` })) });
  const accepts = (b: Baseline, f: Finding): boolean => applyBaseline(b, [f]).accepted.length === 1;

  it("accepts a finding of the named rule at the named path, and keeps the rest", () => {
    const history = finding(rules.shellHistory, file("/root/.bash_history"));
    const other = finding(rules.shellHistory, file("/home/admin/.bash_history"));
    const key = finding(rules.privateKey, file("/root/.bash_history"));
    const { kept, accepted, unused } = applyBaseline(baseline({ rule: "shell-history", path: "/root/.bash_history" }), [history, other, key]);
    assert.deepEqual(kept, [other, key]);
    assert.deepEqual(accepted, [{ ...history, acceptance: { where: "b.yaml:1", reason: "reason 0" } }]);
    assert.deepEqual(unused, []);
  });

  it("matches * within one path segment and ** across any number of them", () => {
    const star = baseline({ rule: "shell-history", path: "/home/*/.bash_history" });
    assert.ok(accepts(star, finding(rules.shellHistory, file("/home/admin/.bash_history"))));
    assert.ok(!accepts(star, finding(rules.shellHistory, file("/home/a/b/.bash_history"))));
    assert.ok(!accepts(star, finding(rules.shellHistory, file("/home/admin/.bash_history.bak"))));
    const partial = baseline({ rule: "private-key", path: "/etc/ssl/private/test-*.pem" });
    assert.ok(accepts(partial, finding(rules.privateKey, file("/etc/ssl/private/test-ca.pem"))));
    assert.ok(!accepts(partial, finding(rules.privateKey, file("/etc/ssl/private/prod.pem"))));

    const globstar = baseline({ rule: "temporary-files", path: "/var/tmp/**" });
    assert.ok(accepts(globstar, finding(rules.temporaryFiles, file("/var/tmp/a"))));
    assert.ok(accepts(globstar, finding(rules.temporaryFiles, file("/var/tmp/a/b/c"))));
    assert.ok(!accepts(globstar, finding(rules.temporaryFiles, file("/var/tmpx/a"))));
    const middle = baseline({ rule: "shell-history", path: "/**/.python_history" });
    assert.ok(accepts(middle, finding(rules.shellHistory, file("/.python_history"))));
    assert.ok(accepts(middle, finding(rules.shellHistory, file("/home/a/.python_history"))));
    const dots = baseline({ rule: "shell-history", path: "/root/.bash_history" });
    assert.ok(!accepts(dots, finding(rules.shellHistory, file("/root/xbash_history"))), "a dot is not a wildcard");
  });

  it("accepts the rule everywhere when the entry has no path, and only raw findings at an offset", () => {
    const everywhere = baseline({ rule: "machine-id" });
    assert.ok(accepts(everywhere, finding(rules.machineId, file("/etc/machine-id"))));
    assert.ok(accepts(everywhere, finding(rules.machineId, { kind: "raw", offset: 7, area: "journal" })));

    const atOffset = baseline({ rule: "deleted-secret", offset: 1048576 });
    assert.ok(accepts(atOffset, finding(rules.deletedSecret, { kind: "raw", offset: 1048576, area: "unallocated" })));
    assert.ok(!accepts(atOffset, finding(rules.deletedSecret, { kind: "raw", offset: 1048577, area: "unallocated" })));
    assert.ok(!accepts(atOffset, finding(rules.deletedSecret, file("/x"))));
  });

  it("lets a path name the blocks a deleted file left, by its former name", () => {
    const cache = baseline({ rule: "deleted-file", path: "/var/cache/apt/**" });
    assert.ok(accepts(cache, finding(rules.deletedFile, { kind: "raw", offset: 4096, area: "deleted-file", inode: 9, formerPath: "/var/cache/apt/pkgcache.bin" })));
    assert.ok(!accepts(cache, finding(rules.deletedFile, { kind: "raw", offset: 4096, area: "deleted-file", inode: 9 })));
  });

  it("returns the entries that accepted nothing, so stale ones can go", () => {
    const b = baseline({ rule: "shell-history", path: "/root/.bash_history" }, { rule: "machine-id" });
    const { unused } = applyBaseline(b, [finding(rules.machineId, file("/etc/machine-id"))]);
    assert.deepEqual(unused.map((e) => e.where), ["b.yaml:1"]);
  });
});
