import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { KilnError } from "../../errors.js";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { Ext4Filesystem } from "./ext4-filesystem.js";

/** A small deterministic generator, so a failing seed can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Opens, walks, reads every file (a little of each) and scans for deleted inodes; returns the problems met. */
async function readEverything(image: string): Promise<string[]> {
  const handle = await open(image, "r");
  try {
    const fs = await Ext4Filesystem.open(handle, { offset: 0, size: (await handle.stat()).size, name: image });
    const starts: number[] = [];
    for await (const file of fs.walk()) {
      for await (const chunk of fs.read(file, 256 * 1024)) assert.ok(chunk.length <= 1 << 20);
      for (const run of file.extents) starts.push(run.physicalBlock);
    }
    for (const block of starts) fs.ownerOf(block);
    await fs.deletedInodes();
    for (let block = 0; block < fs.blocksCount; block += 97) fs.ownerOf(block);
    return fs.problems;
  } finally {
    await handle.close();
  }
}

async function makeImage(dir: string, name: string, args: string[]): Promise<{ image: string; metadataBlocks: number[]; blockSize: number }> {
  const tree = join(dir, `${name}-tree`);
  await mkdir(join(tree, "etc/deep/er"), { recursive: true });
  await mkdir(join(tree, "many"));
  for (let i = 0; i < 400; i++) await writeFile(join(tree, "many", `a-rather-long-file-name-${i}`), `file ${i}\n`.repeat(i));
  await writeFile(join(tree, "etc/deep/er/file"), "x".repeat(70000));
  const sparse = await open(join(tree, "sparse"), "w");
  for (let i = 0; i < 6; i++) await sparse.write("island", i * 65536);
  await sparse.close();
  const image = join(dir, `${name}.img`);
  execFileSync("mke2fs", ["-q", "-F", ...args, "-d", tree, image, "8M"], { stdio: "ignore" });
  execFileSync("debugfs", ["-w", "-R", "rm /etc/deep/er/file", image], { stdio: "ignore" });
  // The blocks worth damaging: descriptors, inode tables, directories, extent and indirect blocks.
  const handle = await open(image, "r");
  try {
    const fs = await Ext4Filesystem.open(handle, { offset: 0, size: (await handle.stat()).size, name: image });
    const blocks = new Set<number>([1, 2]);
    for await (const file of fs.walk()) {
      if (file.entry.type === "directory") for (const run of file.extents) for (let b = 0; b < run.blocks; b++) blocks.add(run.physicalBlock + b);
    }
    for (let block = 0; block < fs.blocksCount; block++) {
      const owner = fs.ownerOf(block);
      if (owner.kind === "metadata" && owner.what === "inode table" && blocks.size < 400) blocks.add(block);
      if (owner.kind === "file" && !blocks.has(block) && blocks.size < 600 && block % 5 === 0) blocks.add(block);
    }
    return { image, metadataBlocks: [...blocks], blockSize: fs.blockSize };
  } finally {
    await handle.close();
  }
}

const dir = await tempDirectory("kiln-ext4-corrupt-");

describe("Ext4Filesystem on corrupt bytes", () => {
  for (const [name, args] of [["ext4", ["-t", "ext4", "-b", "1024"]], ["ext2", ["-t", "ext2", "-b", "1024"]]] as const) {
    it(`never throws anything but a KilnError, and lists what it skipped (${name})`, async () => {
      const { image, metadataBlocks, blockSize } = await makeImage(dir, name, [...args]);
      assert.deepEqual(await readEverything(image), []);
      const pristine = await readFile(image);
      let withProblems = 0;
      for (let seed = 1; seed <= 60; seed++) {
        const next = random(seed);
        const damaged = Buffer.from(pristine);
        for (let i = 0; i < 40; i++) {
          const block = metadataBlocks[Math.floor(next() * metadataBlocks.length)]!;
          const at = block * blockSize + Math.floor(next() * blockSize);
          damaged[at] = next() < 0.3 ? 0 : next() < 0.5 ? 0xff : Math.floor(next() * 256);
        }
        const copy = join(dir, `${name}-damaged.img`);
        await writeFile(copy, damaged);
        try {
          if ((await readEverything(copy)).length > 0) withProblems++;
        } catch (error) {
          assert.ok(error instanceof KilnError, `seed ${seed}: ${(error as Error).stack}`);
        }
      }
      assert.ok(withProblems > 10, `${withProblems} damaged images reported problems`);
    });
  }

  it("reports a directory entry with rec_len 0 and a bad extent header as problems", async () => {
    const { image } = await makeImage(dir, "targeted", ["-t", "ext4", "-b", "1024"]);
    const bytes = await readFile(image);
    const handle = await open(image, "r");
    const fs = await Ext4Filesystem.open(handle, { offset: 0, size: bytes.length, name: image });
    let many = 0;
    let sparse = 0;
    for await (const file of fs.walk()) {
      if (file.entry.path === "/many") many = file.extents[0]!.physicalBlock;
      if (file.entry.path === "/sparse") sparse = file.inode;
    }
    await handle.close();
    bytes.writeUInt16LE(0, many * 1024 + 12 + 4); // the entry after "." gets rec_len 0
    const inodeAt = findInode(fs, sparse);
    assert.ok(inodeAt !== undefined);
    bytes.writeUInt16LE(0x1234, inodeAt + 0x28); // i_block no longer starts with the extent magic
    await writeFile(image, bytes);
    const problems = await readEverything(image);
    assert.ok(problems.some((p) => p.includes("/many (directory block 0)") && p.includes("record length 0")), problems.join("\n"));
    assert.ok(problems.some((p) => p.includes(`inode ${sparse}: extent node without the extent magic`)), problems.join("\n"));
  });

  it("rejects a superblock with impossible geometry as corrupt", async () => {
    const { image } = await makeImage(dir, "geometry", ["-t", "ext4", "-b", "1024"]);
    const bytes = await readFile(image);
    bytes.writeUInt32LE(0, 1024 + 40); // no inodes per group
    await writeFile(image, bytes);
    await assert.rejects(readEverything(image), (error: unknown) => error instanceof KilnError && error.code === "KILN_AUDIT_EXT_CORRUPT");
  });
});

/** The byte offset of an inode's record, found by asking the reader which inode each inode-table byte holds. */
function findInode(fs: Ext4Filesystem, inode: number): number | undefined {
  for (let byte = 0; byte < fs.blocksCount * fs.blockSize; byte += 128) if (fs.inodeAtByte(byte) === inode) return byte;
  return undefined;
}
