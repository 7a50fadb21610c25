import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { tempDirectory } from "../../../../test/helpers/temp.js";
import { convertTo, settleVmdkCid } from "./convert-image.js";

const mib = 1024 * 1024;
const signal = new AbortController().signal;

describe("converting disk.raw", () => {
  it("writes the same vmdk and vhd bytes for the same disk, as it does the raw disk (qemu-img alone stamps a random id and the time)", async () => {
    const dir = await tempDirectory("kiln-convert-");
    const raw = join(dir, "disk.raw");
    await writeFile(raw, "");
    await truncate(raw, 4 * mib);
    execFileSync("dd", ["if=/dev/urandom", `of=${raw}`, "bs=4096", "count=16", "seek=64", "conv=notrunc", "status=none"]);
    const epoch = 1_700_000_000;
    for (const format of ["vmdk", "vhd", "qcow2"] as const) {
      const path = join(dir, `disk.${format}`);
      await convertTo(format, raw, path, { seed: "seed-1", epoch, signal });
      const first = await readFile(path);
      await rm(path);
      await sleep(1100);
      await convertTo(format, raw, path, { seed: "seed-1", epoch, signal });
      assert.ok(first.equals(await readFile(path)), `${format}: the same bytes`);
      // Still the same disk, and a well-formed file of its format.
      const qemu = format === "vhd" ? "vpc" : format;
      execFileSync("qemu-img", ["compare", "-f", "raw", "-F", qemu, raw, path]);
      if (format !== "vhd") execFileSync("qemu-img", ["check", "-f", qemu, path]);
    }
    const vhd = await readFile(join(dir, "disk.vhd"));
    const footer = vhd.subarray(vhd.length - 512);
    assert.equal(footer.readUInt32BE(24), epoch - 946_684_800, "created at SOURCE_DATE_EPOCH (seconds since 2000)");
    let sum = 0;
    for (let i = 0; i < 512; i += 1) if (i < 64 || i >= 68) sum += footer[i] ?? 0;
    assert.equal(footer.readUInt32BE(64), ~sum >>> 0, "the footer's checksum matches it (VHD specification)");
    await convertTo("vhd", raw, join(dir, "other.vhd"), { seed: "seed-2", epoch, signal });
    const other = await readFile(join(dir, "other.vhd"));
    assert.ok(!other.subarray(other.length - 512 + 68, other.length - 512 + 84).equals(footer.subarray(68, 84)), "another build's disk has another unique id");
  });

  it("gives a vmdk the build's eight-digit CID whatever length qemu-img's random one had (it prints it without leading zeros)", async () => {
    const dir = await tempDirectory("kiln-cid-");
    const raw = join(dir, "disk.raw");
    await writeFile(raw, "");
    await truncate(raw, mib);
    const settled: Buffer[] = [];
    for (const random of ["1234567", "89abcdef", "5"]) {
      const path = join(dir, "disk.vmdk");
      await rm(path, { force: true });
      execFileSync("qemu-img", ["convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, path]);
      // As qemu-img would have written it with this CID: the descriptor's text shifted, zero-padded.
      const file = await readFile(path);
      const start = file.indexOf("# Disk DescriptorFile");
      const end = file.indexOf(0, start);
      const text = file.toString("latin1", start, end).replace(/\nCID=[0-9a-f]+\n/, `\nCID=${random}\n`);
      file.fill(0, start, end + 16);
      file.write(text, start, "latin1");
      await writeFile(path, file);
      await settleVmdkCid(path, "seed-1");
      settled.push(await readFile(path));
      execFileSync("qemu-img", ["check", "-q", "-f", "vmdk", path]);
    }
    assert.ok(settled.every((b) => b.equals(settled[0] ?? Buffer.alloc(0))), "the same bytes");
    assert.match(settled[0]?.toString("latin1") ?? "", /\nCID=[0-9a-f]{8}\n/);
  });
});
