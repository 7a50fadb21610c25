import { runHardening } from "../../../harden/run-hardening.js";
import type { LocalFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import type { LocalBuildRequest } from "../request.js";
import type { WorkTree } from "./unpack-base.js";

/**
 * Hardens the tree for sharing (seed 003): locked passwords, key-only sshd checked with the
 * image's own `sshd -t`, no host keys, and a first-boot service (kiln's, or cloud-init's
 * configuration) that gives each instance its own host keys and its launch key.
 */
export const hardenTree: Step<LocalBuildRequest & { tree: WorkTree }, object, LocalFacts> = {
  name: "harden",
  plan: ({ loaded }) => ({ calls: [], creates: [], note: loaded.template.harden === false ? "harden: false" : "locked passwords, key-only sshd, first-boot service" }),
  run: (ctx, { loaded, tree }) => runHardening(ctx, tree.root, loaded.template.harden),
};
