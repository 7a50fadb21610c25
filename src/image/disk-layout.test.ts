import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { open, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../test/helpers/temp.js";
import { KilnError } from "../errors.js";
import { biosBootSectors, grubConfig, grubDirectories, grubImage, kernelCommandLine, writeEsp } from "./boot-loader.js";
import { derivedGuid, gptLayout, partitionTypes, sfdiskScript } from "./disk-layout.js";
import { findFilesystems } from "./partition-table.js";

const MiB = 1024 * 1024;

describe("gptLayout", () => {
  it("puts BIOS boot, ESP and root on whole MiB, root last, and sizes the disk around the root filesystem", () => {
    const layout = gptLayout({ rootBytes: 500 * MiB + 1, boot: ["bios", "uefi"], seed: "s" });
    assert.deepEqual(layout.partitions.map((p) => [p.number, p.name, p.offset / MiB, p.bytes / MiB]), [[1, "bios-boot", 1, 1], [2, "esp", 2, 64], [3, "root", 66, 501]]);
    assert.equal(layout.bytes, (66 + 501 + 1) * MiB, "one MiB after root for the backup GPT");
    assert.equal(layout.root.type, partitionTypes.root);
    assert.equal(gptLayout({ rootBytes: 100 * MiB, boot: ["uefi"], seed: "s" }).partitions.map((p) => p.name).join(), "esp,root");
    assert.equal(gptLayout({ rootBytes: 100 * MiB, boot: [], seed: "s" }).root.offset, MiB);
  });

  it("gives a fixed disk size to root after the other partitions, and refuses a disk too small for it", () => {
    assert.equal(gptLayout({ diskBytes: 1024 * MiB, boot: ["bios", "uefi"], seed: "s" }).bytes, 1024 * MiB);
    assert.throws(() => gptLayout({ diskBytes: 70 * MiB, boot: ["bios", "uefi"], seed: "s" }), (e: unknown) => e instanceof KilnError && e.code === "KILN_SIZE" && /70 MiB disk/.test(e.message));
  });

  it("derives every GUID from the seed: the same inputs give the same disk, other inputs other GUIDs", () => {
    const a = gptLayout({ rootBytes: MiB, boot: ["bios", "uefi"], seed: "inputs-1" });
    const b = gptLayout({ rootBytes: MiB, boot: ["bios", "uefi"], seed: "inputs-1" });
    const c = gptLayout({ rootBytes: MiB, boot: ["bios", "uefi"], seed: "inputs-2" });
    assert.deepEqual(a, b);
    const guids = [a.diskGuid, ...a.partitions.map((p) => p.guid)];
    assert.equal(new Set(guids).size, 4);
    assert.ok(guids.every((g) => /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/.test(g)), guids.join());
    assert.notEqual(c.root.guid, a.root.guid);
    assert.equal(derivedGuid("x", "root"), derivedGuid("x", "root"));
  });

  it("is written by the real sfdisk as laid out, and read back by kiln's own partition reader", async () => {
    const dir = await tempDirectory("kiln-layout-");
    const disk = join(dir, "disk.raw");
    const layout = gptLayout({ rootBytes: 40 * MiB, boot: ["bios", "uefi"], seed: "readback" });
    await writeFile(disk, "");
    await truncate(disk, layout.bytes);
    execFileSync("sfdisk", ["--quiet", "--no-reread", "--no-tell-kernel", disk], { input: sfdiskScript(layout) });
    const table = JSON.parse(execFileSync("sfdisk", ["--json", disk], { encoding: "utf8" })) as { partitiontable: { id: string; partitions: { start: number; size: number; type: string; uuid: string; name: string }[] } };
    assert.equal(table.partitiontable.id, layout.diskGuid);
    assert.deepEqual(table.partitiontable.partitions.map((p) => [p.start * 512, p.size * 512, p.type, p.uuid, p.name]), layout.partitions.map((p) => [p.offset, p.bytes, p.type, p.guid, p.name]));
    const handle = await open(disk, "r");
    try {
      const volumes = await findFilesystems(handle, (await stat(disk)).size, "disk.raw");
      assert.deepEqual(volumes.map((v) => [v.index, v.offset, v.size]), layout.partitions.map((p) => [p.number, p.offset, p.bytes]));
    } finally {
      await handle.close();
    }
  });
});

describe("boot loader", () => {
  it("points the MBR's boot code at core.img and core.img's block list at the rest of it, as grub-bios-setup does", async () => {
    const bootImage = await readFile(join(grubDirectories.bios, "boot.img"));
    const core = Buffer.alloc(3 * 512 + 100, 0x41);
    const { mbrCode, core: patched } = biosBootSectors(bootImage, core, 2048);
    assert.equal(mbrCode.length, 440, "the partition table after byte 440 is left alone");
    assert.equal(mbrCode.readBigUInt64LE(0x5c), 2048n, "core.img's first sector");
    assert.deepEqual([...mbrCode.subarray(0x66, 0x68)], [0x90, 0x90], "the boot drive check is skipped for a hard disk");
    assert.deepEqual(mbrCode.subarray(0, 0x5c), bootImage.subarray(0, 0x5c), "the code itself is GRUB's");
    assert.equal(patched.length, 4 * 512, "padded to whole sectors");
    assert.equal(patched.readBigUInt64LE(500), 2049n, "the rest starts at the next sector");
    assert.equal(patched.readUInt16LE(508), 3, "three more sectors");
    assert.equal(patched.readUInt16LE(510), 0x820, "loaded after the first one");
    assert.throws(() => biosBootSectors(Buffer.alloc(512), core, 2048), /not a 512-byte boot sector/);
  });

  it("boots root by PARTUUID with serial and VGA consoles, from an embedded GRUB config", () => {
    const entry = { kernel: { version: "6.1.0-28-cloud-amd64", kernel: "/vmlinuz", initrd: "/initrd.img" }, rootFilesystemUuid: "0d5b5e0e-1111-4222-8333-444455556666", rootPartitionGuid: "ABCDEF01-2345-4678-89AB-CDEF01234567", kernelArgs: ["quiet"] };
    assert.equal(kernelCommandLine(entry), "root=PARTUUID=abcdef01-2345-4678-89ab-cdef01234567 ro console=tty0 console=ttyS0,115200n8 quiet");
    const config = grubConfig(entry).split("\n");
    assert.ok(config.includes("search --no-floppy --fs-uuid --set=root 0d5b5e0e-1111-4222-8333-444455556666"));
    assert.ok(config.includes(`linux /vmlinuz ${kernelCommandLine(entry)}`));
    assert.ok(config.includes("initrd /initrd.img"));
    assert.equal(config.filter((l) => l.startsWith("initrd")).length, 1, "one initrd line with an initrd");
    assert.ok(!grubConfig({ ...entry, kernel: { version: "x", kernel: "/vmlinuz" } }).includes("initrd"), "none without");
  });

  it("makes the ESP a FAT32 filesystem that knows where its partition starts, as mkfs.fat on the partition would", async () => {
    const dir = await tempDirectory("kiln-esp-");
    const disk = join(dir, "disk.raw");
    const layout = gptLayout({ rootBytes: 8 * MiB, boot: ["bios", "uefi"], seed: "esp" });
    await writeFile(disk, "");
    await truncate(disk, layout.bytes);
    execFileSync("sfdisk", ["--quiet", "--no-reread", "--no-tell-kernel", disk], { input: sfdiskScript(layout) });
    await writeEsp(disk, layout, Buffer.from("not really GRUB"), { volumeId: "1234abcd", epoch: 1_700_000_000, scratch: dir, signal: new AbortController().signal });
    const esp = layout.esp?.offset ?? 0;
    const bootSector = Buffer.alloc(512);
    const handle = await open(disk, "r");
    try {
      await handle.read(bootSector, 0, 512, esp);
    } finally {
      await handle.close();
    }
    assert.equal(bootSector.toString("latin1", 0x52, 0x5a), "FAT32   ");
    // BPB "hidden sectors": the partition's first sector, which mkfs.fat writes itself on a partition device.
    assert.equal(bootSector.readUInt32LE(0x1c), esp / 512);
  });

  it("makes the same GRUB images from the same config (grub-mkimage is reproducible)", async () => {
    const dir = await tempDirectory("kiln-grub-");
    const config = grubConfig({ kernel: { version: "v", kernel: "/vmlinuz" }, rootFilesystemUuid: "u", rootPartitionGuid: "G", kernelArgs: [] });
    const signal = new AbortController().signal;
    for (const firmware of ["bios", "uefi"] as const) {
      const a = await grubImage(firmware, config, dir, signal);
      const b = await grubImage(firmware, config, dir, signal);
      assert.ok(a.length > 20_000, `${firmware}: ${a.length} bytes`);
      assert.ok(a.equals(b), `${firmware}: identical`);
      // The BIOS core image is compressed; the EFI one carries the config as it is.
      if (firmware === "uefi") assert.ok(a.includes(Buffer.from("search --no-floppy --fs-uuid --set=root u")), "the config is embedded");
    }
  });
});

describe("writeEsp", () => {
  // mtools reads `FILE@@OFFSET` up to the first @@: a disk whose path holds @@ must still be the one written.
  it("writes the ESP of a disk whose path contains @@, and no other file", async () => {
    const dir = await tempDirectory("kiln-esp-");
    const odd = join(dir, "out@@0");
    execFileSync("mkdir", [odd]);
    const layout = gptLayout({ rootBytes: 8 * MiB, boot: ["uefi"], seed: "s" });
    const disk = join(odd, "disk.raw");
    await truncate(await open(disk, "wx").then(async (h) => { await h.close(); return disk; }), layout.bytes);
    await writeEsp(disk, layout, Buffer.from("not really GRUB"), { volumeId: "12345678", epoch: 1_700_000_000, scratch: dir, signal: new AbortController().signal });
    const plain = join(dir, "copy.raw");
    execFileSync("cp", [disk, plain]);
    const listing = execFileSync("mdir", ["-b", "-i", `${plain}@@${layout.esp?.offset ?? 0}`, "::/EFI/BOOT"], { encoding: "utf8", env: { ...process.env, MTOOLS_SKIP_CHECK: "1", MTOOLSRC: "/dev/null" } });
    assert.match(listing, /BOOTX64\.EFI/);
  });
});
