import type { Communicator } from "../../../communicator/communicator.js";
import { runHardening } from "../../../harden/run-hardening.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import type { AmazonEbsBuildRequest } from "../request.js";

/** The local builder's hardening, run on a Linux build instance over SSH after the provisioners. */
export const hardenInstance: Step<AmazonEbsBuildRequest & { communicator: Communicator }, object, AmazonEbsFacts> = {
  name: "harden build instance",
  plan: ({ loaded }) => ({ calls: [], creates: [], note: loaded.template.harden === false ? "harden: false" : "over SSH" }),
  run: (ctx, { loaded, communicator }) => runHardening(ctx, communicator, loaded.template.harden),
};
