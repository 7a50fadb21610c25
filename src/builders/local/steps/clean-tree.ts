import { cleanScript } from "../../../clean/clean-list.js";
import type { Step } from "../../../pipeline/step.js";
import type { LocalBuildRequest } from "../request.js";
import type { WorkTree } from "./unpack-base.js";

/**
 * Removes what must never ship (histories, authorized_keys, host keys, machine id, the build
 * host's resolv.conf and hostname, apt lists and caches, logs, temp files, and the template's
 * own list), printing each thing it removed. It runs inside the chroot so that every path,
 * symlinks included, is resolved inside the image.
 */
export const cleanTree: Step<LocalBuildRequest & { tree: WorkTree }, { cleaned: string[] }> = {
  name: "clean",
  run: async (ctx, { loaded, tree }) => {
    const { clean } = loaded.template;
    if (!clean.enabled) {
      ctx.report.warn("clean is disabled (clean.enabled: false): histories, keys and logs stay in the image");
      return { output: { cleaned: [] }, summary: "skipped" };
    }
    const cleaned: string[] = [];
    await tree.root.runScript(cleanScript(clean.paths), {
      what: "the clean step",
      signal: ctx.signal,
      interpreter: "/bin/sh",
      onStdoutLine: (line) => {
        if (line.startsWith("warning: ")) return ctx.report.warn(line.slice(9));
        cleaned.push(line);
        ctx.report.info(line);
      },
      onStderrLine: (line) => ctx.report.output("clean", line),
    });
    return { output: { cleaned }, summary: `${cleaned.length} path${cleaned.length === 1 ? "" : "s"} removed or emptied` };
  },
};
