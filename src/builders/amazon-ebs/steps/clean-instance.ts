import type { Communicator } from "../../../communicator/communicator.js";
import { cleanSummary, runCleanList } from "../../../clean/run-clean.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import type { AmazonEbsBuildRequest } from "../request.js";

/**
 * The local builder's clean list, run on the build instance over SSH just before it stops:
 * histories, every authorized_keys (the temporary key kiln logged in with among them), host
 * keys, cloud-init's per-instance state (so the next instance gets its own key), logs, temp
 * files. kiln's session is non-interactive and keeps no history of its own.
 */
export const cleanInstance: Step<AmazonEbsBuildRequest & { communicator: Communicator }, object, AmazonEbsFacts> = {
  name: "clean build instance",
  plan: ({ loaded }) => ({ calls: [], creates: [], note: loaded.template.clean.enabled ? "the clean list, over SSH" : "clean.enabled: false" }),
  run: async (ctx, { loaded, communicator }) => {
    const cleaned = await runCleanList(ctx, communicator, loaded.template.clean);
    return { output: {}, summary: cleanSummary(cleaned) };
  },
};
