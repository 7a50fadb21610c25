import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmod, chown, link, lstat, mkdir, open, readFile, readdir, readlink, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { TreeEntry } from "../../audit/sources/image-tree.js";
import { KilnError } from "../../errors.js";
import { statInImage } from "../../../test/helpers/debugfs.js";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { Ext4Filesystem, type Ext4File } from "./ext4-filesystem.js";

const longTarget = `/opt/${"very-long-directory-name/".repeat(4)}target-of-a-slow-symlink`;

/** A tree with every kind of thing an image holds, and the shapes that need each part of the reader. */
async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, "etc/ssh"), { recursive: true });
  await mkdir(join(root, "home/admin/.config/deep/er"), { recursive: true });
  await writeFile(join(root, "etc/hostname"), "kiln\n");
  await writeFile(join(root, "etc/ssh/sshd_config"), "PermitRootLogin no\n".repeat(300));
  await writeFile(join(root, "home/admin/.config/deep/er/notes.txt"), "nested\n");
  await writeFile(join(root, "usr-bin-tool"), "#!/bin/sh\necho tool\n");
  await chown(join(root, "usr-bin-tool"), 1000, 1000);
  await chmod(join(root, "usr-bin-tool"), 0o4755);
  await chown(join(root, "home/admin"), 1000, 1000);
  await chmod(join(root, "home/admin"), 0o700);
  await symlink("hostname", join(root, "etc/short-link"));
  await symlink(longTarget, join(root, "etc/long-link"));
  await writeFile(join(root, "empty"), "");
  await writeFile(join(root, "etc/empty-too"), "");
  await writeFile(join(root, "ünïcødé 名前 🔑.txt"), "unicode\n");
  await link(join(root, "etc/hostname"), join(root, "hostname-hardlink"));
  execFileSync("mkfifo", [join(root, "fifo")]);
  await writeFile(join(root, "large.bin"), randomBytes(5 * 1024 * 1024 + 123));
  const sparse = await open(join(root, "sparse.img"), "w");
  for (let island = 0; island < 7; island++) await sparse.write(Buffer.alloc(4096 + island, `island ${island} `), 0, 4096 + island, island * 1024 * 1024);
  // No hole at the end: mke2fs 1.47.0 -O inline_data cuts a trailing hole off the file's size.
  await sparse.close();
  await mkdir(join(root, "many"));
  for (let i = 0; i < 3000; i++) await writeFile(join(root, "many", `entry-${i}`), i % 500 === 0 ? `content ${i}\n` : "");
}

interface Expected {
  entry: TreeEntry;
  sha256?: string;
}

/** The entries walk() should give, in its order: name order, later hard links as "other" pointing at the first. */
async function describeTree(root: string, dir = "", into = new Map<string, Expected>(), links = new Map<number, string>()): Promise<Map<string, Expected>> {
  for (const name of (await readdir(join(root, dir))).sort()) {
    const path = `${dir}/${name}`;
    const stat = await lstat(join(root, path));
    const type = stat.isFile() ? "file" : stat.isDirectory() ? "directory" : stat.isSymbolicLink() ? "symlink" : "other";
    const entry: TreeEntry = { path, type, mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid, size: type === "file" ? stat.size : 0 };
    if (type === "symlink") entry.linkTarget = await readlink(join(root, path));
    const first = links.get(stat.ino);
    if (type === "file" && first !== undefined) Object.assign(entry, { type: "other", size: 0, linkTarget: first });
    if (type === "file" && stat.nlink > 1) links.set(stat.ino, path);
    into.set(path, entry.type === "file" ? { entry, sha256: sha256(await readFile(join(root, path))) } : { entry });
    if (type === "directory") await describeTree(root, path, into, links);
  }
  return into;
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

async function readAll(fs: Ext4Filesystem, file: Ext4File): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of fs.read(file)) {
    assert.ok(chunk.length <= 1024 * 1024, "chunks are at most 1 MiB");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function debugfs(image: string, request: string): string {
  return execFileSync("debugfs", ["-R", request, image], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
}

/** `e2fsck -D` turns large directories into htrees (mke2fs -d writes them linear); 1 means it changed something. */
function buildHtrees(image: string): void {
  try {
    execFileSync("e2fsck", ["-fyD", image], { stdio: "ignore" });
  } catch (error) {
    if ((error as { status?: number }).status !== 1) throw error;
  }
}

async function withFilesystem<T>(image: string, use: (fs: Ext4Filesystem) => Promise<T>): Promise<T> {
  const handle = await open(image, "r");
  try {
    const { size } = await handle.stat();
    return await use(await Ext4Filesystem.open(handle, { offset: 0, size, name: image }));
  } finally {
    await handle.close();
  }
}

const variants: Array<{ name: string; args: string[]; htree: boolean }> = [
  { name: "ext4, 4 KiB blocks", args: ["-t", "ext4", "-b", "4096"], htree: true },
  { name: "ext4, 1 KiB blocks", args: ["-t", "ext4", "-b", "1024"], htree: true },
  { name: "ext4, 64bit", args: ["-t", "ext4", "-O", "64bit"], htree: true },
  { name: "ext4 without 64bit (32-byte group descriptors)", args: ["-t", "ext4", "-O", "^64bit,^metadata_csum"], htree: true },
  { name: "ext4, inline_data", args: ["-t", "ext4", "-O", "inline_data"], htree: false },
  { name: "ext4, meta_bg", args: ["-t", "ext4", "-b", "1024", "-O", "meta_bg,^resize_inode"], htree: false },
  { name: "ext2 (block maps)", args: ["-t", "ext2", "-b", "4096"], htree: false },
  { name: "ext3, 1 KiB blocks (block maps, journal)", args: ["-t", "ext3", "-b", "1024"], htree: true },
];

const dir = await tempDirectory("kiln-ext4-");
const tree = join(dir, "tree");
await mkdir(tree);
await makeTree(tree);
const expected = await describeTree(tree);

describe("Ext4Filesystem", () => {

  for (const variant of variants) {
    it(`walks and reads ${variant.name} exactly like the tree it was written from`, async () => {
      const image = join(dir, `${variant.name.replace(/\W+/g, "-")}.img`);
      execFileSync("mke2fs", ["-q", "-F", ...variant.args, "-d", tree, image, "96M"], { stdio: "ignore" });
      if (variant.htree) {
        buildHtrees(image);
        assert.match(debugfs(image, "stat /many"), /Flags: 0x\w*1\w{3}\b/, "the big directory is an htree");
      }
      if (variant.args.includes("ext4")) assert.match(debugfs(image, "ex /sparse.img"), /^ 0\/ 1/m, "the sparse file's extent tree has an index node");
      await withFilesystem(image, async (fs) => {
        const seen = new Map<string, Ext4File>();
        for await (const file of fs.walk()) {
          assert.ok(!seen.has(file.entry.path), `${file.entry.path} walked once`);
          seen.set(file.entry.path, file);
        }
        assert.deepEqual(fs.problems, []);
        const root = statInImage(image, "/")!;
        assert.deepEqual(seen.get("/")?.entry, { path: "/", type: "directory", mode: root.mode, uid: root.uid, gid: root.gid, size: 0 });
        assert.equal(seen.get("/lost+found")?.entry.type, "directory");
        seen.delete("/");
        seen.delete("/lost+found");
        assert.deepEqual([...seen.keys()], [...expected.keys()], "the same paths in the same order");
        for (const [path, want] of expected) {
          const file = seen.get(path)!;
          assert.deepEqual(file.entry, want.entry, path);
          if (want.sha256 !== undefined) assert.equal(sha256(await readAll(fs, file)), want.sha256, `content of ${path}`);
        }
        if (variant.name.includes("inline")) assert.equal(seen.get("/etc/hostname")?.inline, true);
        checkOwners(fs, seen, !variant.args.includes("ext2"));
      });
    });
  }

  it("reads a filesystem that starts at an offset inside a disk image", async () => {
    const image = join(dir, "disk.img");
    const offset = 1024 * 1024;
    execFileSync("truncate", ["-s", String(offset + 64 * 1024 * 1024), image]);
    execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", "-d", tree, "-E", `offset=${offset}`, image, "64M"], { stdio: "ignore" });
    const handle = await open(image, "r");
    try {
      const fs = await Ext4Filesystem.open(handle, { offset, size: 64 * 1024 * 1024, name: image });
      let hostname: Ext4File | undefined;
      for await (const file of fs.walk()) if (file.entry.path === "/etc/hostname") hostname = file;
      assert.equal((await readAll(fs, hostname!)).toString(), "kiln\n");
      assert.equal(fs.offset, offset);
    } finally {
      await handle.close();
    }
  });

  it("reads at most `limit` bytes", async () => {
    const image = join(dir, "limit.img");
    execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", "-d", tree, image, "64M"], { stdio: "ignore" });
    await withFilesystem(image, async (fs) => {
      for await (const file of fs.walk()) {
        if (file.entry.path !== "/large.bin") continue;
        let total = 0;
        for await (const chunk of fs.read(file, 1_500_000)) total += chunk.length;
        assert.equal(total, 1_500_000);
      }
    });
  });

  it("says which image holds no ext filesystem", async () => {
    const image = join(dir, "random.img");
    await writeFile(image, Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 7919) & 0xff)));
    await assert.rejects(withFilesystem(image, async () => undefined), (error: unknown) => {
      assert.ok(error instanceof KilnError);
      assert.equal(error.code, "KILN_AUDIT_NOT_EXT");
      assert.ok(error.message.includes(image));
      return true;
    });
  });

  it("says an image cut off before the end of its filesystem is truncated, with both sizes", async () => {
    const image = join(dir, "whole.img");
    const half = join(dir, "half.img");
    execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", "-b", "4096", "-d", tree, image, "32M"], { stdio: "ignore" });
    execFileSync("sh", ["-c", `head -c ${16 * 1024 * 1024} "$1" > "$2"`, "sh", image, half]);
    await assert.rejects(withFilesystem(half, async () => undefined), (error: unknown) => {
      assert.ok(error instanceof KilnError);
      assert.equal(error.code, "KILN_AUDIT_TRUNCATED");
      assert.ok(error.message.includes(half) && error.message.includes(String(16 * 1024 * 1024)) && error.message.includes(String(32 * 1024 * 1024)), error.message);
      assert.equal(error.hint, "the image is incomplete: copy or download it again");
      return true;
    });
  });
});

/** Every block the bitmaps mark in use has an owner, and every walked file owns its data blocks. */
function checkOwners(fs: Ext4Filesystem, files: ReadonlyMap<string, Ext4File>, journaled: boolean): void {
  assert.equal(fs.ownerOf(0).kind, "metadata");
  for (const file of files.values()) {
    for (const run of file.extents) {
      for (const block of [run.physicalBlock, run.physicalBlock + run.blocks - 1]) {
        assert.deepEqual(fs.ownerOf(block), { kind: "file", inode: file.inode, path: fs.pathOf(file.inode) }, `block ${block} of ${file.entry.path}`);
      }
    }
  }
  let journal = 0;
  for (let block = 0; block < fs.blocksCount; block++) {
    const owner = fs.ownerOf(block);
    if (owner.kind === "journal") journal++;
    assert.notEqual(owner.kind, "allocated-unowned", `block ${block} is in use but nobody owns it`);
    if (owner.kind !== "free") assert.ok(fs.blockInUse(block), `block ${block} is owned by ${JSON.stringify(owner)} but free in the bitmap`);
  }
  assert.equal(journal > 0, journaled, "journal blocks");
}
