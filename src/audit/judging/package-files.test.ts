import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { appendFile, copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { auditImage } from "../audit-image.js";
import { recordBase } from "./recorded-base.js";
import { DirectoryTree } from "../sources/directory-tree.js";

const leaked = "/usr/share/doc/libfoo/examples/leaked.key";

/** A small tree as a hostile provisioner leaves it: its own key, and dpkg's records saying the key is stock. */
async function forgedTree(dir: string): Promise<string> {
  const root = join(dir, "root");
  const key = await newKey(dir, "key");
  await mkdir(join(root, dirname(leaked)), { recursive: true });
  const content = await readFile(key);
  await writeFile(join(root, leaked), content);
  await mkdir(join(root, "var/lib/dpkg/info"), { recursive: true });
  await writeFile(join(root, "var/lib/dpkg/info/libfoo.md5sums"), "d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/libfoo/copyright\n");
  // The forgery: one line appended, naming the leaked key with its own checksum.
  await appendFile(join(root, "var/lib/dpkg/info/libfoo.md5sums"), `${createHash("md5").update(content).digest("hex")}  ${leaked.slice(1)}\n`);
  return root;
}

async function newKey(dir: string, name: string): Promise<string> {
  const key = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
  return key;
}

/** A base where libfoo really installed a test key (its own md5sums say so, before any provisioner). */
async function stockTree(dir: string): Promise<string> {
  const root = join(dir, "root");
  const content = await readFile(await newKey(dir, "stock"));
  await mkdir(join(root, dirname(leaked)), { recursive: true });
  await writeFile(join(root, leaked), content);
  await mkdir(join(root, "var/lib/dpkg/info"), { recursive: true });
  await writeFile(join(root, "var/lib/dpkg/info/libfoo:amd64.md5sums"), `${createHash("md5").update(content).digest("hex")}  ${leaked.slice(1)}\n`);
  return root;
}

function ext4Of(root: string, image: string): string {
  execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", "-d", root, image, "16M"], { stdio: "ignore" });
  return image;
}

const severitiesAt = (findings: readonly { rule: { id: string }; severity: string; location: { kind: string; path?: string }; message: string }[], path: string): string[][] =>
  findings.filter((f) => f.location.kind === "file" && f.location.path === path).map((f) => [f.rule.id, f.severity]);

describe("stock-file exemptions cannot be forged by the image", () => {
  it("a key listed in a forged .md5sums line is still reported (directory)", async () => {
    const root = await forgedTree(await tempDirectory("kiln-forge-"));
    const result = await auditImage(root, { failOn: "high" });
    const found = result.findings.filter((f) => f.location.kind === "file" && f.location.path === leaked);
    assert.deepEqual(found.map((f) => [f.rule.id, f.severity]), [["private-key", "critical"]]);
  });

  it("a key listed in a forged .md5sums line is still reported (ext4 image)", async () => {
    const dir = await tempDirectory("kiln-forge-");
    const root = await forgedTree(dir);
    const image = join(dir, "root.ext4");
    execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", "-d", root, image, "16M"], { stdio: "ignore" });
    const result = await auditImage(image, { failOn: "high" });
    const found = result.findings.filter((f) => f.location.kind === "file" && f.location.path === leaked);
    assert.deepEqual(found.map((f) => [f.rule.id, f.severity]), [["private-key", "critical"]]);
  });

  it("with no recorded base, the report says nothing is exempt", async () => {
    const root = await forgedTree(await tempDirectory("kiln-forge-"));
    const result = await auditImage(root, { failOn: "high" });
    assert.match(result.exemptions ?? "", /^no recorded base: no file is exempt/);
  });

  it("a forged line after the base was recorded exempts nothing", async () => {
    const dir = await tempDirectory("kiln-forge-");
    const root = join(dir, "root");
    await mkdir(join(root, "var/lib/dpkg/info"), { recursive: true });
    await writeFile(join(root, "var/lib/dpkg/info/libfoo.md5sums"), "d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/libfoo/copyright\n");
    const recordedBase = await recordBase(new DirectoryTree(root), "test base");
    await forgedTree(dir); // the provisioner: its key, and the appended line
    for (const image of [root, ext4Of(root, join(dir, "root.ext4"))]) {
      const result = await auditImage(image, { failOn: "high", recordedBase });
      assert.deepEqual(severitiesAt(result.findings, leaked), [["private-key", "critical"]], image);
    }
  });

  it("a file its package installed in the recorded base, unchanged, is listed at info with the package", async () => {
    const dir = await tempDirectory("kiln-stock-");
    const root = await stockTree(dir);
    const recordedBase = await recordBase(new DirectoryTree(root), "test base");
    assert.equal(recordedBase.files.get(leaked)?.package, "libfoo");
    for (const image of [root, ext4Of(root, join(dir, "root.ext4"))]) {
      const result = await auditImage(image, { failOn: "high", recordedBase });
      assert.deepEqual(severitiesAt(result.findings, leaked), [["private-key", "info"]], image);
      assert.match(result.findings.find((f) => f.severity === "info")?.message ?? "", /exempt: unchanged \(sha256\) from package libfoo in the base kiln recorded/);
      assert.match(result.exemptions ?? "", /1 packaged files of the recorded base \(test base\)/);
    }
  });

  it("a stock file changed after recording (dpkg's md5sums updated to match) is reported in full", async () => {
    const dir = await tempDirectory("kiln-stock-");
    const root = await stockTree(dir);
    const recordedBase = await recordBase(new DirectoryTree(root), "test base");
    const other = await readFile(await newKey(dir, "other"));
    await writeFile(join(root, leaked), other);
    await writeFile(join(root, "var/lib/dpkg/info/libfoo:amd64.md5sums"), `${createHash("md5").update(other).digest("hex")}  ${leaked.slice(1)}\n`);
    for (const image of [root, ext4Of(root, join(dir, "root.ext4"))]) {
      const result = await auditImage(image, { failOn: "high", recordedBase });
      assert.deepEqual(severitiesAt(result.findings, leaked), [["private-key", "critical"]], image);
    }
  });

  it("a file whose content did not match dpkg's record when the base was recorded is not the package's", async () => {
    const dir = await tempDirectory("kiln-stock-");
    const root = await stockTree(dir);
    await writeFile(join(root, leaked), await readFile(await newKey(dir, "changed-before")));
    const recordedBase = await recordBase(new DirectoryTree(root), "test base");
    assert.equal(recordedBase.files.get(leaked)?.package, undefined);
    const result = await auditImage(root, { failOn: "high", recordedBase });
    assert.deepEqual(severitiesAt(result.findings, leaked), [["private-key", "critical"]]);
  });

  const gnutls = "/usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3";
  it("a pinned upstream file with test keys is listed at info without a recorded base; one byte more and it is not", { skip: existsSync(gnutls) ? false : `no ${gnutls}` }, async () => {
    const dir = await tempDirectory("kiln-pinned-");
    const root = join(dir, "root");
    await mkdir(join(root, "usr/lib"), { recursive: true });
    await copyFile(gnutls, join(root, "usr/lib/libgnutls.so.30"));
    const pinned = await auditImage(root, { failOn: "high" });
    assert.ok(pinned.findings.length > 0 && pinned.findings.every((f) => f.severity === "info" && /pinned by sha256: libgnutls30 /.test(f.message)), JSON.stringify(pinned.findings.map((f) => [f.severity, f.message])));
    await appendFile(join(root, "usr/lib/libgnutls.so.30"), "\n");
    const changed = await auditImage(root, { failOn: "high" });
    assert.ok(changed.findings.some((f) => f.severity === "critical"), "a changed copy is no longer the pinned file");
  });
});
