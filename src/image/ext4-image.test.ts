import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chown, mkdir, rm, symlink, writeFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { findBytes } from "../../test/helpers/bytes.js";
import { catInImage, statInImage } from "../../test/helpers/debugfs.js";
import { tempDirectory } from "../../test/helpers/temp.js";
import { sha256File } from "../system/sha256.js";
import { writeExt4Image } from "./ext4-image.js";
import { usedInodes } from "./inode-map.js";
import { clampTimesAndMeasure } from "./tree-times.js";

const epoch = 1_700_000_000;
const uuid = "0307a327-5a1c-5278-901c-913911651936";
const never = new AbortController().signal;

async function makeTree(dir: string): Promise<string> {
  const root = join(dir, "root");
  await mkdir(join(root, "etc"), { recursive: true });
  await mkdir(join(root, "home/admin"), { recursive: true });
  await writeFile(join(root, "etc/hello"), "hello\n");
  await writeFile(join(root, "home/admin/notes"), "private notes\n");
  await chown(join(root, "home/admin/notes"), 1000, 1000);
  await chmod(join(root, "home/admin/notes"), 0o640);
  await writeFile(join(root, "etc/tool"), "#!/bin/sh\n");
  await chmod(join(root, "etc/tool"), 0o4755);
  await symlink("hello", join(root, "etc/greeting"));
  // A secret that existed during the build and was deleted before imaging.
  await writeFile(join(root, "etc/secret"), "KILN-DELETED-SECRET-7f3a\n".repeat(1000));
  await rm(join(root, "etc/secret"));
  return root;
}

describe("writeExt4Image", () => {
  it("writes owners, modes and links, and nothing that was deleted", async () => {
    const dir = await tempDirectory();
    const root = await makeTree(dir);
    const usage = await clampTimesAndMeasure(root, epoch);
    assert.ok(usage.entries >= 7);
    const file = join(dir, "disk.raw");
    await writeExt4Image({ root, file, bytes: 32 * 1024 * 1024, label: "root", uuid, epoch, minimumInodes: 64, signal: never });

    assert.deepEqual(statInImage(file, "/home/admin/notes"), { type: "regular", mode: 0o640, uid: 1000, gid: 1000, size: 14 });
    assert.equal(statInImage(file, "/etc/tool")?.mode, 0o4755);
    assert.equal(statInImage(file, "/etc/greeting")?.type, "symlink");
    assert.equal(catInImage(file, "/etc/hello"), "hello\n");
    assert.equal(statInImage(file, "/etc/secret"), undefined);
    assert.deepEqual(await findBytes(file, "KILN-DELETED-SECRET"), []);
    const label = execFileSync("dumpe2fs", ["-h", file], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    assert.match(label, new RegExp(`Filesystem UUID:\\s+${uuid}`));
  });

  it("gives the same bytes for the same tree written at different times", async () => {
    const dir = await tempDirectory();
    const root = await makeTree(dir);
    await clampTimesAndMeasure(root, epoch);
    const first = join(dir, "first.raw");
    await writeExt4Image({ root, file: first, bytes: 32 * 1024 * 1024, label: "root", uuid, epoch, minimumInodes: 64, signal: never });
    // Change every inode's ctime on the build host; the image must not notice.
    await new Promise((r) => setTimeout(r, 1100));
    await chmod(join(root, "etc/hello"), 0o644);
    await chmod(join(root, "etc"), 0o755);
    const second = join(dir, "second.raw");
    await writeExt4Image({ root, file: second, bytes: 32 * 1024 * 1024, label: "root", uuid, epoch, minimumInodes: 64, signal: never });
    assert.equal(await sha256File(first), await sha256File(second));
  });

  it("refuses to write over an existing file", async () => {
    const dir = await tempDirectory();
    const root = await makeTree(dir);
    const file = join(dir, "old.raw");
    await writeFile(file, "old bytes");
    await assert.rejects(writeExt4Image({ root, file, bytes: 32 * 1024 * 1024, label: "root", uuid, epoch, minimumInodes: 64, signal: never }), /EEXIST/);
  });
});

describe("usedInodes", () => {
  it("takes each group's free ranges out of its inodes", () => {
    const dump = [
      "Inodes per group:         8",
      "Group 0: (Blocks 0-10)", "  Free inodes: 7-8",
      "Group 1: (Blocks 11-20)", "  Free inodes: 9, 11-16",
      "Group 2: (Blocks 21-30)", "  Free inodes: ",
    ].join("\n");
    assert.deepEqual(usedInodes(dump), [1, 2, 3, 4, 5, 6, 10, 17, 18, 19, 20, 21, 22, 23, 24]);
  });
});
