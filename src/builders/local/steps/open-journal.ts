import { dirname } from "node:path";
import { KilnError } from "../../../errors.js";
import type { Step } from "../../../pipeline/step.js";
import { LocalJournal, partialOutputPrefix } from "../local-journal.js";
import type { LocalFacts } from "../plan-facts.js";
import type { LocalBuildRequest } from "../request.js";

/**
 * Opens the build's journal before anything is made: it names the work directory and the
 * partial output, so a build killed at any point (SIGKILL, power) leaves nothing `kiln cleanup
 * --stale` cannot find. It is removed last, once the build's own undos left nothing behind;
 * `--on-error abort` keeps it with the work directory, for `kiln cleanup` once debugging is done.
 */
export const openJournal: Step<LocalBuildRequest, object, LocalFacts> = {
  name: "open build journal",
  plan: () => ({ calls: [], creates: [{ type: "build journal", name: "<state directory>/builds/<build id>.json (removed when the build ends)" }] }),
  run: async (ctx, { buildId, workParent, outputDirectory }) => {
    const journal = await LocalJournal.open(buildId, [
      { type: "work directory", parent: workParent, prefix: buildId },
      { type: "partial output", parent: dirname(outputDirectory), prefix: partialOutputPrefix(buildId) },
    ]);
    ctx.cleanup.defer(`remove build journal ${journal.path}`, async () => {
      const left = await journal.existing();
      if (left.length === 0) return journal.remove();
      throw new KilnError("KILN_RESOURCES_LEFT", `build ${buildId} left ${left.map((l) => `${l.type} ${l.path}`).join(", ")}`, { hint: `run: kiln cleanup ${buildId}` });
    }, { keepOnAbort: true });
    return { output: {}, summary: journal.path };
  },
};
