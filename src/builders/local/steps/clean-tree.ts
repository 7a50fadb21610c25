import { cleanSummary, runCleanList } from "../../../clean/run-clean.js";
import type { LocalFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import type { LocalBuildRequest } from "../request.js";
import type { WorkTree } from "./unpack-base.js";

/**
 * Removes what must never ship (histories, authorized_keys, host keys, machine id, the build
 * host's resolv.conf and hostname, apt lists and caches, logs, temp files, and the template's
 * own list), printing each thing it removed. It runs inside the chroot so that every path,
 * symlinks included, is resolved inside the image.
 */
export const cleanTree: Step<LocalBuildRequest & { tree: WorkTree }, { cleaned: string[] }, LocalFacts> = {
  name: "clean",
  plan: ({ loaded }) => ({ calls: [], creates: [], note: loaded.template.clean.enabled ? "the clean list" : "clean.enabled: false" }),
  run: async (ctx, { loaded, tree }) => {
    const cleaned = await runCleanList(ctx, tree.root, loaded.template.clean);
    return { output: { cleaned: cleaned ?? [] }, summary: cleanSummary(cleaned) };
  },
};
