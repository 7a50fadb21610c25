import { join } from "node:path";
import { stat } from "node:fs/promises";
import type { LocalFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { exec } from "../../../system/exec.js";
import { sha256File, type PendingDigest } from "../../../system/sha256.js";
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
      const converted = exec("qemu-img", ["convert", "-f", "raw", ...qemuFormat[format], disk.path, path], { what: `converting to ${format} (qemu-img)`, signal: stop.signal })
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
