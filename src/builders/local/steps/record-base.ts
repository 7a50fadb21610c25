import { rename } from "node:fs/promises";
import { join } from "node:path";
import { readRecordedBase, recordBase as record, writeRecordedBase, type RecordedBase } from "../../../audit/judging/recorded-base.js";
import { DirectoryTree } from "../../../audit/sources/directory-tree.js";
import type { Step } from "../../../pipeline/step.js";
import { isOwnFile } from "../../../system/private-directory.js";
import type { LocalFacts } from "../plan-facts.js";
import type { LocalBuildRequest } from "../request.js";
import type { BaseRootfs } from "./base-rootfs.js";
import type { WorkTree } from "./unpack-base.js";

/**
 * Records the base kiln built, before any provisioner runs: the sha256 of each file and the
 * package that installed it. The audit exempts a packaged file only when it is still exactly
 * this; nothing in the tree can add to the record, which lives in the work directory beside it.
 * A given tarball or directory is the template's, not kiln's: it is not recorded, so nothing in
 * it is exempt.
 */
export const recordBase: Step<LocalBuildRequest & { base: BaseRootfs; tree: WorkTree }, { recordedBase: RecordedBase | undefined }, LocalFacts> = {
  name: "record base",
  plan: ({ builder }) => ({
    calls: [], creates: [],
    note: builder.base.mmdebstrap === undefined ? "skipped: the base is given, not built by kiln (no file in it is exempt from the audit)" : "sha256 of every file of the base, for the audit's stock-file exemptions",
  }),
  run: async (ctx, { builder, base, tree, buildId }) => {
    if (builder.base.mmdebstrap === undefined) {
      return { output: { recordedBase: undefined }, summary: `skipped: the base is a given ${base.kind}, not built by kiln; no file in it is exempt from the audit` };
    }
    // Recorded once per cached base, kept beside its tarball (kiln's own file, checked like it):
    // hashing the whole base again on every build cost seconds.
    const cached = base.path.replace(/\.tar$/, ".recorded.json");
    let recorded = base.path.endsWith(".tar") && (await isOwnFile(cached)) ? await readRecordedBase(cached).catch(() => undefined) : undefined;
    let path = cached;
    if (recorded === undefined) {
      recorded = await record(new DirectoryTree(tree.root.root), `mmdebstrap ${builder.base.mmdebstrap.suite} base ${base.key}`, ctx.signal);
      // Written under a name of its own and renamed, so no reader ever sees half a record; a
      // cache kiln may read but not write (a shared one) keeps it in the work directory instead.
      const publish = async (target: string): Promise<string> => {
        const partial = `${target}.${buildId}.partial`;
        await writeRecordedBase(partial, recorded as RecordedBase);
        await rename(partial, target);
        return target;
      };
      path = await publish(cached).catch(() => publish(join(tree.workDirectory, "recorded-base.json")));
    }
    const stock = [...recorded.files.values()].filter((f) => f.package !== undefined).length;
    return { output: { recordedBase: recorded }, summary: `${recorded.files.size} files, ${stock} of them as their package installed them; ${path}` };
  },
};
