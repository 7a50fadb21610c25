import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KilnError } from "../errors.js";
import { checkBuiltDisk } from "./built-disk.js";

let root: string;
const disk = Buffer.alloc(1024 * 1024, 7);
const sha = createHash("sha256").update(disk).digest("hex");
const signal = new AbortController().signal;

/** An output directory as a build leaves it: disk.raw, manifest.json, audit.json. */
async function output(name: string, manifest: Record<string, unknown> = {}, mode = 0o755): Promise<string> {
  const directory = join(root, name);
  await mkdir(directory);
  await writeFile(join(directory, "disk.raw"), disk, { mode: 0o644 });
  await writeFile(join(directory, "audit.json"), JSON.stringify({ passed: true }));
  await writeFile(join(directory, "manifest.json"), JSON.stringify({ artifacts: [{ format: "raw", path: "disk.raw", sha256: sha }], audit: { report: "audit.json" }, disk: { boot: ["uefi"] }, ...manifest }));
  await chmod(directory, mode);
  return directory;
}
const refused = (promise: Promise<unknown>, pattern: RegExp): Promise<void> => assert.rejects(promise, (error: unknown) => {
  assert.ok(error instanceof KilnError, `a KilnError, not ${String(error)}`);
  assert.match(error.message, pattern);
  return true;
});

describe("kiln publish's disk check against a hostile or careless local user", () => {
  before(async () => { root = await mkdtemp(join(tmpdir(), "kiln-built-disk-test-")); });
  after(async () => { await rm(root, { recursive: true, force: true }); });

  it("takes a built disk in a directory of its own", async () => {
    const directory = await output("honest");
    const checked = await checkBuiltDisk(join(directory, "disk.raw"), signal);
    assert.equal(checked.sha256, sha);
    assert.equal(checked.auditPassed, true);
  });

  it("refuses a disk in a directory another user can rename things in (the disk swapped after its check)", async () => {
    const directory = await output("shared", {}, 0o777);
    await refused(checkBuiltDisk(join(directory, "disk.raw"), signal), /refusing to publish from .*writable by group or others/);
  });

  it("gives the real path of a disk reached through a link to its directory", async () => {
    const directory = await output("real");
    await symlink(directory, join(root, "link"));
    const checked = await checkBuiltDisk(join(root, "link", "disk.raw"), signal);
    assert.equal(checked.path, join(directory, "disk.raw"));
  });

  it("refuses an audit report that the manifest places elsewhere (a passed report planted outside)", async () => {
    const elsewhere = join(root, "elsewhere");
    await mkdir(elsewhere);
    await writeFile(join(elsewhere, "passed.json"), JSON.stringify({ passed: true }));
    const directory = await output("forged", { audit: { report: "../elsewhere/passed.json" } });
    await writeFile(join(directory, "audit.json"), JSON.stringify({ passed: false }));
    await refused(checkBuiltDisk(join(directory, "disk.raw"), signal), /audit report \.\.\/elsewhere\/passed\.json is missing, unreadable or not a file beside the disk/);
  });

  it("refuses a manifest that is a FIFO (it would hang) or a link", async () => {
    const fifo = await output("fifo");
    await rm(join(fifo, "manifest.json"));
    execFileSync("mkfifo", [join(fifo, "manifest.json")]);
    await refused(checkBuiltDisk(join(fifo, "disk.raw"), signal), /no readable manifest\.json/);
    const linked = await output("linked");
    await rm(join(linked, "manifest.json"));
    await symlink(join(root, "honest", "manifest.json"), join(linked, "manifest.json"));
    await refused(checkBuiltDisk(join(linked, "disk.raw"), signal), /no readable manifest\.json/);
  });
});
