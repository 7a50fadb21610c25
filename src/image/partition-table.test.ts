import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { open, stat, truncate, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../test/helpers/temp.js";
import { KilnError } from "../errors.js";
import { findFilesystems, type Volume } from "./partition-table.js";

const MiB = 1024 * 1024;

function run(command: string, args: string[], input?: string): string {
  return execFileSync(command, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

async function volumesOf(file: string): Promise<Volume[]> {
  const handle = await open(file, "r");
  try {
    return await findFilesystems(handle, (await stat(file)).size, basename(file));
  } finally {
    await handle.close();
  }
}

async function writeAt(file: string, offset: number, bytes: Buffer): Promise<void> {
  const handle = await open(file, "r+");
  try {
    await handle.write(bytes, 0, bytes.length, offset);
  } finally {
    await handle.close();
  }
}

interface SfdiskPartition { node: string; start: number; size: number; type: string; name?: string }

/** The partitions as sfdisk reads them (in 512-byte sectors), the oracle for offsets and sizes. */
function sfdiskPartitions(file: string): SfdiskPartition[] {
  return (JSON.parse(run("sfdisk", ["--json", file])) as { partitiontable: { partitions: SfdiskPartition[] } }).partitiontable.partitions;
}

function expectKilnError(code: string, check: (error: KilnError) => void = () => undefined) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof KilnError, `expected a KilnError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    check(error);
    return true;
  };
}

/** A GPT disk as a cloud image has it: an EFI system partition (FAT32) and an ext4 root. */
async function gptDisk(dir: string): Promise<string> {
  const file = join(dir, "gpt.img");
  await truncate(await createEmpty(file), 64 * MiB);
  run("sfdisk", ["-q", file], 'label: gpt\nsize=34MiB, type=U, name="EFI system"\ntype=L, name=root\n');
  const [esp, root] = sfdiskPartitions(file);
  assert.ok(esp !== undefined && root !== undefined);
  run("mkfs.vfat", ["--offset", String(esp.start), "-F", "32", "-s", "1", "-n", "ESP", file, String(esp.size / 2)]);
  run("mke2fs", ["-q", "-F", "-t", "ext4", "-E", `offset=${root.start * 512}`, file, `${root.size / 2}k`]);
  return file;
}

async function createEmpty(file: string): Promise<string> {
  await writeFile(file, "");
  return file;
}

describe("findFilesystems", () => {
  it("finds the EFI system partition and the ext4 root of a GPT disk, where sfdisk puts them", async () => {
    const file = await gptDisk(await tempDirectory());
    const [esp, root] = sfdiskPartitions(file);
    assert.deepEqual(await volumesOf(file), [
      { index: 1, offset: (esp?.start ?? 0) * 512, size: (esp?.size ?? 0) * 512, filesystem: "vfat", label: "EFI system" },
      { index: 2, offset: (root?.start ?? 0) * 512, size: (root?.size ?? 0) * 512, filesystem: "ext", label: "root" },
    ]);
  });

  it("reads a GPT disk with 4096-byte sectors", async () => {
    const file = await createEmpty(join(await tempDirectory(), "4k.img"));
    await truncate(file, 64 * MiB);
    run("fdisk", ["-b", "4096", file], "g\nn\n1\n\n+8M\nn\n2\n\n\nw\n");
    const volumes = await volumesOf(file);
    assert.equal(volumes.length, 2);
    const root = volumes[1];
    assert.ok(root !== undefined);
    assert.equal(root.offset % 4096, 0);
    run("mke2fs", ["-q", "-F", "-t", "ext4", "-b", "4096", "-E", `offset=${root.offset}`, file, `${root.size / 1024}k`]);
    assert.deepEqual((await volumesOf(file)).map((v) => [v.index, v.filesystem]), [[1, "unknown"], [2, "ext"]]);
  });

  it("falls back to the backup GPT when the primary header or its entries are damaged", async () => {
    const damage = [
      { at: 512 + 56, bytes: Buffer.from("x") }, // the disk GUID, under the header's CRC
      { at: 512, bytes: Buffer.alloc(512) }, // the whole header: only the protective MBR still says GPT
      { at: 1024 + 56, bytes: Buffer.from("Y\0", "latin1") }, // partition 1's name, under the entries' CRC
    ];
    for (const { at, bytes } of damage) {
      const file = await gptDisk(await tempDirectory());
      const expected = await volumesOf(file);
      await writeAt(file, at, bytes);
      assert.deepEqual(await volumesOf(file), expected);
    }
  });

  it("names both damaged GPT headers when neither can be used", async () => {
    const file = await gptDisk(await tempDirectory());
    const size = (await stat(file)).size;
    await writeAt(file, 512 + 56, Buffer.from("x"));
    await writeAt(file, size - 512 + 56, Buffer.from("x"));
    await assert.rejects(volumesOf(file), expectKilnError("KILN_AUDIT_BAD_PARTITION_TABLE", (error) => {
      assert.match(error.message, /^gpt\.img has a damaged partition table: the GPT header at byte 512 fails its CRC check and the backup at byte \d+ fails its CRC check$/);
      assert.equal(error.exitCode, 2);
    }));
  });

  it("follows an MBR disk's extended partition to its logical partitions", async () => {
    const file = await createEmpty(join(await tempDirectory(), "mbr.img"));
    await truncate(file, 48 * MiB);
    run("sfdisk", ["-q", file], "label: dos\nsize=10MiB, type=83\ntype=5\nsize=12MiB, type=83\nsize=8MiB, type=82\n");
    const partitions = sfdiskPartitions(file);
    const [primary, , logical, swap] = partitions;
    assert.ok(primary !== undefined && logical !== undefined && swap !== undefined);
    run("mke2fs", ["-q", "-F", "-t", "ext4", "-E", `offset=${primary.start * 512}`, file, `${primary.size / 2}k`]);
    run("mke2fs", ["-q", "-F", "-t", "ext2", "-E", `offset=${logical.start * 512}`, file, `${logical.size / 2}k`]);
    const swapFile = await createEmpty(`${file}.swap`);
    await truncate(swapFile, swap.size * 512);
    run("mkswap", ["-q", swapFile]);
    run("dd", [`if=${swapFile}`, `of=${file}`, "bs=512", `seek=${swap.start}`, "conv=notrunc", "status=none"]);

    assert.deepEqual(await volumesOf(file), [
      { index: 1, offset: primary.start * 512, size: primary.size * 512, filesystem: "ext" },
      { index: 5, offset: logical.start * 512, size: logical.size * 512, filesystem: "ext" },
      { index: 6, offset: swap.start * 512, size: swap.size * 512, filesystem: "swap" },
    ]);
    // sfdisk numbers the logical partitions as kiln does.
    assert.deepEqual(partitions.map((p) => /\d+$/.exec(p.node)?.[0]), ["1", "2", "5", "6"]);
  });

  it("identifies each partition by its magic, not its type id", async () => {
    const file = await createEmpty(join(await tempDirectory(), "magic.img"));
    await truncate(file, 8 * MiB);
    run("sfdisk", ["-q", file], "label: dos\nsize=2MiB, type=83\nsize=2MiB, type=83\nsize=2MiB, type=7\n");
    const [xfs, ntfs] = sfdiskPartitions(file);
    await writeAt(file, (xfs?.start ?? 0) * 512, Buffer.from("XFSB"));
    await writeAt(file, (ntfs?.start ?? 0) * 512 + 3, Buffer.from("NTFS    "));
    assert.deepEqual((await volumesOf(file)).map((v) => v.filesystem), ["xfs", "ntfs", "unknown"]);
  });

  it("reads a bare ext4 filesystem as one volume at offset 0", async () => {
    const file = await createEmpty(join(await tempDirectory(), "root.ext4"));
    await truncate(file, 8 * MiB);
    run("mke2fs", ["-q", "-F", "-t", "ext4", file]);
    assert.deepEqual(await volumesOf(file), [{ offset: 0, size: 8 * MiB, filesystem: "ext" }]);
  });

  it("does not mistake a bare FAT filesystem's boot sector for an MBR", async () => {
    const file = join(await tempDirectory(), "esp.vfat");
    run("mkfs.vfat", ["-C", file, "8192"]);
    assert.deepEqual(await volumesOf(file), [{ offset: 0, size: 8 * MiB, filesystem: "vfat" }]);
  });

  it("refuses a GPT disk whose last partition is cut short, naming the partition and the sizes", async () => {
    const file = await gptDisk(await tempDirectory());
    const root = sfdiskPartitions(file)[1];
    assert.ok(root !== undefined);
    const cut = (root.start + root.size / 2) * 512;
    await truncate(file, cut);
    await assert.rejects(volumesOf(file), expectKilnError("KILN_AUDIT_TRUNCATED", (error) => {
      const end = (root.start + root.size) * 512;
      assert.equal(error.message,
        `gpt.img is truncated: partition 2 "root" (bytes ${root.start * 512}–${end}, ${root.size * 512} bytes) ends ${end - cut} bytes past the end of the file (${cut} bytes)`);
      assert.equal(error.hint, "the image is incomplete: copy or download it again");
    }));
  });

  it("refuses an MBR disk cut short inside its extended partition", async () => {
    const file = await createEmpty(join(await tempDirectory(), "cut.img"));
    await truncate(file, 32 * MiB);
    run("sfdisk", ["-q", file], "label: dos\nsize=8MiB, type=83\ntype=5\nsize=8MiB, type=83\n");
    await truncate(file, 12 * MiB);
    await assert.rejects(volumesOf(file), expectKilnError("KILN_AUDIT_TRUNCATED", (error) => {
      assert.match(error.message, /^cut\.img is truncated: partition 2 \(bytes \d+–\d+, \d+ bytes\) ends \d+ bytes past the end of the file \(12582912 bytes\)$/);
    }));
  });

  it("refuses a file with no partition table and no filesystem, saying what kiln reads", async () => {
    const file = join(await tempDirectory(), "noise.bin");
    // Deterministic noise, so the test never meets a chance 0x55AA with plausible entries.
    const blocks = Array.from({ length: 32768 }, (_, i) => createHash("sha256").update(String(i)).digest());
    await writeFile(file, Buffer.concat(blocks));
    await assert.rejects(volumesOf(file), expectKilnError("KILN_AUDIT_UNKNOWN_FORMAT", (error) => {
      assert.equal(error.message, "noise.bin has no partition table and no filesystem kiln knows");
      assert.match(error.hint ?? "", /directory.*tar\/tar\.gz\/tar\.zst.*raw ext2\/3\/4 image.*GPT\/MBR disk.*qcow2/);
    }));
    const empty = await createEmpty(join(await tempDirectory(), "empty.img"));
    await assert.rejects(volumesOf(empty), expectKilnError("KILN_AUDIT_UNKNOWN_FORMAT"));
  });
});
