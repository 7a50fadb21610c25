import { chmod, lstat, rename } from "node:fs/promises";
import { join, relative } from "node:path";
import { KilnError } from "../../../errors.js";
import type { Step } from "../../../pipeline/step.js";
import type { LocalFacts } from "../plan-facts.js";
import type { AuditSummary } from "./audit-artifact.js";
import type { Artifact } from "./convert-image.js";
import type { PartialOutput } from "./filesystem-image.js";

/** The output directory, and the paths in it, once published. */
export interface Published {
  outputDirectory: string;
  artifacts: Artifact[];
  manifestPath: string;
  audit: AuditSummary;
}

/**
 * The last step: the audit passed and every file is written, so the partial output becomes the
 * output directory in one rename (one filesystem: atomic). Until this moment nothing in the
 * output directory looks like a built image; a build killed before it leaves only `.partial-…`.
 */
export const publishOutput: Step<{ partialOutput: PartialOutput; artifacts: Artifact[]; manifestPath: string; audit: AuditSummary }, Published, LocalFacts> = {
  name: "publish output",
  plan: () => ({ calls: [], creates: [{ type: "output directory", name: "output/<name>-<time>, renamed from the partial output once the audit passed" }] }),
  run: async (_ctx, { partialOutput: { directory, destination }, artifacts, manifestPath, audit }) => {
    // Checked when the build began; a rename would replace an empty directory made since without a word.
    if (await lstat(destination).then(() => true, () => false)) {
      throw new KilnError("KILN_OUTPUT_EXISTS", `output directory ${destination} appeared while the build ran`, {
        hint: "kiln never writes over an earlier build: remove it, or build again a second later",
      });
    }
    await chmod(directory, 0o755);
    await rename(directory, destination);
    const moved = (path: string): string => join(destination, relative(directory, path));
    return {
      output: {
        outputDirectory: destination,
        artifacts: artifacts.map((a) => ({ ...a, path: moved(a.path) })),
        manifestPath: moved(manifestPath),
        audit: audit.reportPath === undefined ? audit : { ...audit, reportPath: moved(audit.reportPath) },
      },
      summary: destination,
    };
  },
};
