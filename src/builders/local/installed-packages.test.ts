import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { KilnError } from "../../errors.js";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { installedPackages } from "./installed-packages.js";

const stanza = (name: string): string => `Package: ${name}\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n`;

async function tree(): Promise<string> {
  const root = await tempDirectory("kiln-packages-");
  await mkdir(join(root, "var/lib/dpkg"), { recursive: true });
  return root;
}

describe("installedPackages reads the tree's dpkg status as data", () => {
  it("lists the packages dpkg records as installed", async () => {
    const root = await tree();
    await writeFile(join(root, "var/lib/dpkg/status"), stanza("zlib1g") + stanza("bash"));
    assert.deepEqual((await installedPackages(root)).map((p) => p.name), ["bash", "zlib1g"]);
  });

  it("resolves a link to an absolute path inside the tree, never on the build host", async () => {
    const root = await tree();
    const host = await tempDirectory("kiln-host-");
    await writeFile(join(host, "status"), stanza("host-only-package"));
    // The same absolute path inside the tree holds the image's own file.
    await mkdir(join(root, host), { recursive: true });
    await writeFile(join(root, host, "status"), stanza("image-package"));
    await symlink(join(host, "status"), join(root, "var/lib/dpkg/status"));
    assert.deepEqual((await installedPackages(root)).map((p) => p.name), ["image-package"]);
  });

  it("does not climb out of the tree by .. in a link or a directory link", async () => {
    const root = await tree();
    const host = await tempDirectory("kiln-host-");
    await writeFile(join(host, "status"), stanza("host-only-package"));
    await symlink(`../../../../../../../../../../../..${host}/status`, join(root, "var/lib/dpkg/status"));
    assert.deepEqual(await installedPackages(root), [], "the link resolves inside the tree, where there is nothing");
    const other = await tree();
    await symlink(host, join(other, "var/lib/dpkg-host"));
    await writeFile(join(other, "var/lib/dpkg/status"), "");
    await import("node:fs/promises").then((fs) => fs.rm(join(other, "var/lib/dpkg"), { recursive: true }));
    await symlink("dpkg-host", join(other, "var/lib/dpkg"));
    assert.deepEqual(await installedPackages(other), [], "a directory link to a host path resolves inside the tree");
  });

  it("refuses a fifo at once, naming the path, without waiting for a writer", async () => {
    const root = await tree();
    execFileSync("mkfifo", [join(root, "var/lib/dpkg/status")]);
    const started = Date.now();
    await assert.rejects(installedPackages(root), (error: unknown) => {
      assert.ok(error instanceof KilnError, String(error));
      assert.equal(error.code, "KILN_TREE_FILE_REFUSED");
      assert.match(error.message, /\/var\/lib\/dpkg\/status is a fifo/);
      return true;
    });
    assert.ok(Date.now() - started < 2000);
  });

  it("refuses a device node without opening it", { skip: process.geteuid?.() !== 0 && "needs root for mknod" }, async () => {
    const root = await tree();
    execFileSync("mknod", [join(root, "var/lib/dpkg/status"), "c", "1", "3"]);
    await assert.rejects(installedPackages(root), /\/var\/lib\/dpkg\/status is a character device/);
  });
});

describe("lookups in the tree", () => {
  it("refuses a link loop with one clear error", async () => {
    const root = await tree();
    await symlink("b", join(root, "var/lib/dpkg/a"));
    await symlink("a", join(root, "var/lib/dpkg/b"));
    await symlink("a", join(root, "var/lib/dpkg/status"));
    await assert.rejects(installedPackages(root), /\/var\/lib\/dpkg\/status has more than 40 links on its way/);
  });
});
