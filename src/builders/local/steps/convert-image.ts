import { join } from "node:path";
import { stat } from "node:fs/promises";
import type { LocalFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { exec } from "../../../system/exec.js";
import { startSha256, type PendingDigest } from "../../../system/sha256.js";
import type { ImageFormat, LocalBuilderConfig } from "../../../template/schema.js";
import type { DiskImage, PartialOutput } from "./filesystem-image.js";
import { megabytes } from "../../../report/format.js";

export interface Artifact {
  format: ImageFormat;
  path: string;
  bytes: number;
  /** Its sha256, computed in the background from when it is written. */
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

/** Converts disk.raw into the other formats the template asks for, with qemu-img, beside it in the partial output. */
export const convertImage: Step<{ builder: LocalBuilderConfig; partialOutput: PartialOutput; disk: DiskImage }, { artifacts: Artifact[] }, LocalFacts> = {
  name: "convert image",
  plan: ({ builder }) => ({ calls: [], creates: builder.image.formats.filter((f) => f !== "raw").map((f) => ({ type: "disk image", name: `disk.${f}` })) }),
  run: async (ctx, { builder, partialOutput, disk }) => {
    const artifacts: Artifact[] = [{ format: "raw", path: disk.path, bytes: (await stat(disk.path)).size, digest: disk.digest }];
    for (const format of new Set(builder.image.formats)) {
      if (format === "raw") continue;
      const path = join(partialOutput.directory, `disk.${format}`);
      await exec("qemu-img", ["convert", "-f", "raw", ...qemuFormat[format], disk.path, path], { what: `converting to ${format} (qemu-img)`, signal: ctx.signal });
      const { size } = await stat(path);
      artifacts.push({ format, path, bytes: size, digest: startSha256(path, ctx.signal) });
      ctx.report.info(`${path} (${megabytes(size)})`);
    }
    return { output: { artifacts }, summary: artifacts.map((a) => a.format).join(", ") };
  },
};
