import type { Communicator } from "../communicator/communicator.js";
import { runReportingScript } from "../communicator/reporting-script.js";
import type { StepContext } from "../pipeline/step.js";
import type { Template } from "../template/schema.js";
import { hardeningScript } from "./hardening-script.js";

/** The hardening step of every builder: the template's `harden` block, run as root in the target. */
export async function runHardening(ctx: StepContext, target: Communicator, harden: Template["harden"]): Promise<{ output: object; summary: string }> {
  if (harden === false) {
    ctx.report.warn("hardening is off (harden: false): passwords, sshd and first boot are as the image has them");
    return { output: {}, summary: "skipped (harden: false)" };
  }
  const changes = await runReportingScript(ctx, target, hardeningScript(harden), "the hardening step");
  return { output: {}, summary: `${changes.length} change${changes.length === 1 ? "" : "s"}` };
}
