import type { Communicator } from "../communicator/communicator.js";
import { runReportingScript } from "../communicator/reporting-script.js";
import type { StepContext } from "../pipeline/step.js";
import { cleanScript } from "./clean-list.js";

/**
 * Runs the clean list (plus the template's `clean.paths`) through a communicator, as root, so
 * every path resolves inside the target (a chroot, or a build instance over SSH), and reports
 * each thing it removed. Returns those lines; undefined when the template turns cleaning off.
 */
export async function runCleanList(ctx: StepContext, target: Communicator, clean: { enabled: boolean; paths: readonly string[] }): Promise<string[] | undefined> {
  if (!clean.enabled) {
    ctx.report.warn("clean is disabled (clean.enabled: false): histories, keys and logs stay in the image");
    return undefined;
  }
  return runReportingScript(ctx, target, cleanScript(clean.paths), "the clean step");
}

export function cleanSummary(cleaned: readonly string[] | undefined): string {
  if (cleaned === undefined) return "skipped (clean.enabled: false)";
  return `${cleaned.length} path${cleaned.length === 1 ? "" : "s"} removed or emptied`;
}
