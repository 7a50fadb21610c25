import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { findBytes } from "../../../test/helpers/bytes.js";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { Ext4Filesystem, type DeletedInode, type Ext4File } from "./ext4-filesystem.js";

const secret = (what: string): string => `KILN-DELETED-SECRET-${what}-7f3a\n`;

async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, "home/admin/.ssh"), { recursive: true });
  await mkdir(join(root, "var"), { recursive: true });
  await writeFile(join(root, "keep.txt"), "still here\n".repeat(500));
  await writeFile(join(root, "secret.txt"), secret("top").repeat(1000));
  await writeFile(join(root, "home/admin/.ssh/id_ed25519"), secret("key").repeat(20));
  await writeFile(join(root, "home/admin/.ssh/known_hosts"), "host key\n");
  await mkdir(join(root, "root/.aws"), { recursive: true });
  await writeFile(join(root, "root/.aws/credentials"), secret("aws").repeat(10));
  // Seven islands: a deleted file whose extent tree has an index node.
  const islands = await open(join(root, "var/islands.bin"), "w");
  for (let i = 0; i < 7; i++) await islands.write(Buffer.from(secret(`island${i}`).repeat(100)), 0, undefined, i * 1024 * 1024);
  await islands.close();
}

function debugfsWrite(image: string, ...requests: string[]): void {
  for (const request of requests) execFileSync("debugfs", ["-w", "-R", request, image], { stdio: "ignore" });
}

async function walked(image: string): Promise<{ fs: Ext4Filesystem; files: Map<string, Ext4File>; close: () => Promise<void> }> {
  const handle = await open(image, "r");
  const fs = await Ext4Filesystem.open(handle, { offset: 0, size: (await handle.stat()).size, name: image });
  const files = new Map<string, Ext4File>();
  for await (const file of fs.walk()) files.set(file.entry.path, file);
  return { fs, files, close: () => handle.close() };
}

async function runBytes(image: string, blockSize: number, deleted: DeletedInode): Promise<string> {
  const handle = await open(image, "r");
  try {
    const parts: Buffer[] = [];
    for (const run of deleted.runs) {
      const bytes = Buffer.alloc(run.blocks * blockSize);
      await handle.read(bytes, 0, bytes.length, run.physicalBlock * blockSize);
      parts.push(bytes);
    }
    return Buffer.concat(parts).toString("latin1");
  } finally {
    await handle.close();
  }
}

const dir = await tempDirectory("kiln-ext4-deleted-");
const tree = join(dir, "tree");
await mkdir(tree);
await makeTree(tree);

describe("Ext4Filesystem deleted data", () => {
  for (const [name, args] of [["ext4", ["-t", "ext4", "-b", "4096"]], ["ext4, 1 KiB blocks", ["-t", "ext4", "-b", "1024"]], ["ext2", ["-t", "ext2", "-b", "4096"]]] as const) {
    it(`finds files removed with debugfs rm on ${name}, by their former path, in blocks that are free`, async () => {
      const image = join(dir, `${name.replace(/\W+/g, "-")}.img`);
      execFileSync("mke2fs", ["-q", "-F", ...args, "-d", tree, image, "64M"], { stdio: "ignore" });
      debugfsWrite(image, "rm /secret.txt", "rm /home/admin/.ssh/id_ed25519", "rm /var/islands.bin", "rm /root/.aws/credentials", "rmdir /root/.aws");
      const { fs, files, close } = await walked(image);
      try {
        assert.deepEqual(fs.problems, []);
        assert.ok(!files.has("/secret.txt") && files.has("/home/admin/.ssh/known_hosts"));
        const deleted = await fs.deletedInodes();
        const byPath = new Map(deleted.map((d) => [d.formerPath, d]));
        // The last one is named from the blocks of its removed directory.
        for (const [path, marker] of [["/secret.txt", "top"], ["/home/admin/.ssh/id_ed25519", "key"], ["/var/islands.bin", "island6"], ["/root/.aws/credentials", "aws"]] as const) {
          const found = byPath.get(path);
          assert.ok(found !== undefined, `${path} is reported deleted (got ${JSON.stringify(deleted.map((d) => d.formerPath))})`);
          assert.equal(found.mode & 0o170000, 0o100000);
          assert.ok(found.dtime > 0);
          assert.ok((await runBytes(image, fs.blockSize, found)).includes(secret(marker)), `${path}'s runs hold its bytes`);
          for (const run of found.runs) assert.deepEqual(fs.ownerOf(run.physicalBlock), { kind: "free" });
        }
        assert.equal(fs.formerPathOf(byPath.get("/secret.txt")!.inode), "/secret.txt");
        assert.equal(byPath.get("/root/.aws")?.mode, 0o40755);
        const islands = byPath.get("/var/islands.bin")!;
        assert.ok(islands.runs.length >= 7);
        // Every place the secrets are in the raw image is a free block of some deleted inode's runs.
        for (const hit of await findBytes(image, "KILN-DELETED-SECRET")) {
          const block = Math.floor(hit / fs.blockSize);
          assert.deepEqual(fs.ownerOf(block), { kind: "free" }, `hit at byte ${hit}`);
          assert.ok(deleted.some((d) => d.runs.some((r) => block >= r.physicalBlock && block < r.physicalBlock + r.blocks)), `hit at byte ${hit} is in a deleted inode's runs`);
        }
        const keep = files.get("/keep.txt")!;
        assert.deepEqual(fs.ownerOf(keep.extents[0]!.physicalBlock), { kind: "file", inode: keep.inode, path: "/keep.txt" });
        assert.equal(fs.ownerOf(0).kind, "metadata");
      } finally {
        await close();
      }
    });
  }

  it("maps a hit inside the inode table to the inline file it belongs to, live or deleted", async () => {
    const inlineTree = join(dir, "inline-tree");
    await mkdir(join(inlineTree, "etc"), { recursive: true });
    for (const name of ["token", "a", "b", "c"]) await writeFile(join(inlineTree, "etc", name), `INLINE-TOKEN-${name}\n`);
    const image = join(dir, "inline.img");
    execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", "-O", "inline_data", "-d", inlineTree, image, "16M"], { stdio: "ignore" });
    // The first entry of an inline directory loses its inode number when removed; remove a later one.
    const before = await walked(image);
    await before.close();
    const order = [...before.files.keys()].filter((path) => path.startsWith("/etc/"));
    const removed = order.find((path, i) => i > 0 && path !== "/etc/token")!;
    debugfsWrite(image, `rm ${removed}`);
    const { fs, files, close } = await walked(image);
    try {
      assert.equal(files.get("/etc/token")?.inline, true);
      const [live] = await findBytes(image, "INLINE-TOKEN-token");
      assert.ok(live !== undefined);
      assert.deepEqual(fs.ownerOf(Math.floor(live / fs.blockSize)), { kind: "metadata", what: "inode table" });
      assert.equal(fs.inodeAtByte(live), files.get("/etc/token")!.inode);
      assert.equal(fs.pathOf(fs.inodeAtByte(live)!), "/etc/token");
      const [gone] = await findBytes(image, `INLINE-TOKEN-${removed.slice("/etc/".length)}`);
      assert.ok(gone !== undefined);
      assert.equal(fs.formerPathOf(fs.inodeAtByte(gone)!), removed);
      assert.equal(fs.inodeAtByte(0), undefined);
    } finally {
      await close();
    }
  });

  it("asks for a finished walk before answering who owns a block", async () => {
    const image = join(dir, "unwalked.img");
    execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", image, "8M"], { stdio: "ignore" });
    const handle = await open(image, "r");
    try {
      const fs = await Ext4Filesystem.open(handle, { offset: 0, size: 8 << 20, name: image });
      assert.throws(() => fs.ownerOf(0), /after walk\(\)/);
      assert.equal(fs.blockInUse(0), true);
      assert.equal(fs.blockInUse(fs.blocksCount - 1), false);
      assert.equal(fs.blockInUse(fs.blocksCount), false, "past the end of the filesystem");
      assert.throws(() => fs.blockInUse(-1), RangeError);
      for await (const _ of fs.walk()) { /* only to finish the walk */ }
      assert.deepEqual(fs.ownerOf(fs.blocksCount + 10), { kind: "free" });
    } finally {
      await handle.close();
    }
  });
});
