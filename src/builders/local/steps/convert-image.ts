import { join } from "node:path";
import { open, stat } from "node:fs/promises";
import { KilnError } from "../../../errors.js";
import { derivedGuid } from "../../../image/disk-layout.js";
import type { LocalFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { exec } from "../../../system/exec.js";
import { sha256File, sha256Text, type PendingDigest } from "../../../system/sha256.js";
import type { ImageFormat, LocalBuilderConfig } from "../../../template/schema.js";
import type { DiskImage, PartialOutput } from "./filesystem-image.js";

export interface Artifact {
  format: ImageFormat;
  path: string;
  /** Its sha256, once it is written: converted formats are written while the audit runs. */
  digest: PendingDigest;
}

/**
 * qemu-img's output format and options for each: vmdk as one streamOptimized file (what VMware
 * and vSphere's OVF import take), vhd fixed with the raw size kept exactly (what Azure takes: it
 * refuses dynamic VHDs and sizes that are not whole MiB; the disk is written in whole MiB).
 */
const qemuFormat: Record<Exclude<ImageFormat, "raw">, string[]> = {
  qcow2: ["-O", "qcow2"],
  vmdk: ["-O", "vmdk", "-o", "subformat=streamOptimized"],
  vhdx: ["-O", "vhdx"],
  vhd: ["-O", "vpc", "-o", "subformat=fixed,force_size=on"],
};

/**
 * Converts disk.raw into the other formats the template asks for, with qemu-img, beside it in
 * the partial output. The conversions run in the background, while the audit reads the raw disk
 * (both only read it); whoever needs an artifact awaits its digest. A build that fails stops them
 * before its partial output is removed.
 */
export const convertImage: Step<{ builder: LocalBuilderConfig; partialOutput: PartialOutput; disk: DiskImage }, { artifacts: Artifact[] }, LocalFacts> = {
  name: "convert image",
  plan: ({ builder }) => ({ calls: [], creates: builder.image.formats.filter((f) => f !== "raw").map((f) => ({ type: "disk image", name: `disk.${f}` })) }),
  run: async (ctx, { builder, partialOutput, disk }) => {
    const artifacts: Artifact[] = [{ format: "raw", path: disk.path, digest: disk.digest }];
    const stop = new AbortController();
    ctx.signal.addEventListener("abort", () => stop.abort(), { once: true });
    const running: Promise<unknown>[] = [];
    for (const format of new Set(builder.image.formats)) {
      if (format === "raw") continue;
      const path = join(partialOutput.directory, `disk.${format}`);
      const converted = convertTo(format, disk.path, path, { seed: disk.filesystemUuid, epoch: disk.sourceDateEpoch, signal: stop.signal })
        .then(() => sha256File(path, stop.signal));
      // Awaited by the manifest; a build that fails first must not see this as unhandled.
      converted.catch(() => undefined);
      running.push(converted);
      artifacts.push({ format, path, digest: { value: () => converted } });
    }
    ctx.cleanup.deferOnFailure("stop the format conversions", async () => {
      stop.abort();
      await Promise.allSettled(running);
    });
    const others = artifacts.filter((a) => a.format !== "raw").map((a) => a.format);
    return { output: { artifacts }, summary: others.length === 0 ? "raw only" : `${others.join(", ")}: converting while the audit runs` };
  },
};

/** The artifact's size, once it is written. */
export async function artifactBytes(artifact: Artifact): Promise<number> {
  await artifact.digest.value();
  return (await stat(artifact.path)).size;
}

/**
 * One conversion of disk.raw into `format` at `path`, as reproducible as the raw disk: qemu-img
 * stamps a vmdk's descriptor with a random content id (CID) and a VHD's footer with the time and
 * a random unique id; those become the build's (from `seed`, and `epoch` for the time).
 */
export async function convertTo(format: Exclude<ImageFormat, "raw">, raw: string, path: string, { seed, epoch, signal }: { seed: string; epoch: number; signal: AbortSignal }): Promise<void> {
  await exec("qemu-img", ["convert", "-f", "raw", ...qemuFormat[format], raw, path], { what: `converting to ${format} (qemu-img)`, signal });
  if (format === "vmdk") await settleVmdkCid(path, seed);
  if (format === "vhd") await settleVhdFooter(path, seed, epoch);
}

/** The descriptor follows a streamOptimized vmdk's first sector; CID=<hex> is in its first lines. */
export async function settleVmdkCid(path: string, seed: string): Promise<void> {
  const handle = await open(path, "r+");
  try {
    // The sparse extent header (VMware's VMDK specification): the descriptor's offset and size in sectors at 28 and 36.
    const header = Buffer.alloc(512);
    await handle.read(header, 0, 512, 0);
    const offset = Number(header.readBigUInt64LE(28)) * 512;
    const size = Number(header.readBigUInt64LE(36)) * 512;
    if (header.toString("latin1", 0, 4) !== "KDMV" || offset === 0 || size === 0 || size > 65536) {
      throw new KilnError("KILN_QEMU", `qemu-img wrote ${path} without the embedded descriptor kiln expects in a streamOptimized vmdk`);
    }
    const area = Buffer.alloc(size);
    await handle.read(area, 0, size, offset);
    const text = area.toString("latin1", 0, area.indexOf(0) < 0 ? size : area.indexOf(0));
    // qemu-img writes its random CID with as many hex digits as it happens to need: the build's
    // own has all eight, and the text after it moves within the zero-padded descriptor area.
    // Never ffffffff (a "no parent" CID).
    const cid = sha256Text(`kiln-vmdk-cid\0${seed}`).slice(0, 8).replace(/^f+$/, "efffffff");
    const settled = text.replace(/\nCID=[0-9a-f]{1,8}\n/, `\nCID=${cid}\n`);
    if (settled === text && !text.includes(`\nCID=${cid}\n`)) throw new KilnError("KILN_QEMU", `qemu-img wrote ${path} without the CID line kiln expects in a vmdk descriptor`);
    if (settled.length > size) throw new KilnError("KILN_QEMU", `the vmdk descriptor of ${path} has no room for an eight-digit CID`);
    const rewritten = Buffer.alloc(size);
    rewritten.write(settled, 0, "latin1");
    await handle.write(rewritten, 0, size, offset);
  } finally {
    await handle.close();
  }
}

/** Seconds from 1970 to 2000-01-01T00:00:00Z, where a VHD's timestamps count from. */
const vhdEpoch = 946_684_800;

/**
 * A fixed VHD's 512-byte footer (Microsoft's VHD specification): time stamp at 24 (seconds since
 * 2000, big-endian), checksum at 64 (one's complement of the sum of the other bytes), unique id at 68.
 */
async function settleVhdFooter(path: string, seed: string, epoch: number): Promise<void> {
  const handle = await open(path, "r+");
  try {
    const { size } = await handle.stat();
    const footer = Buffer.alloc(512);
    await handle.read(footer, 0, 512, size - 512);
    if (footer.toString("latin1", 0, 8) !== "conectix") throw new KilnError("KILN_QEMU", `qemu-img wrote ${path} without a VHD footer`);
    footer.writeUInt32BE(Math.max(0, Math.min(0xffffffff, epoch - vhdEpoch)), 24);
    Buffer.from(derivedGuid(seed, "vhd").replace(/-/g, ""), "hex").copy(footer, 68);
    footer.writeUInt32BE(0, 64);
    let sum = 0;
    for (const byte of footer) sum += byte;
    footer.writeUInt32BE(~sum >>> 0, 64);
    await handle.write(footer, 0, 512, size - 512);
  } finally {
    await handle.close();
  }
}
