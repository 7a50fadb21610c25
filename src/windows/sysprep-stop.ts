import type { AmazonEbsBuilderConfig } from "../template/schema.js";
import { sysprepShutsDown } from "./generalize.js";
import { windowsTarget } from "./launch-agent.js";

/** Whether a build's sysprep stops its instance itself, as far as the template tells. */
export type SysprepStop = "always" | "never" | "with EC2Config";

/**
 * For plans, before the source image is found: a named agent (or a named version, whose agent
 * the image's name can only move between the EC2Launch versions) settles it; else it depends
 * on the image.
 */
export function plannedSysprepStop(builder: Pick<AmazonEbsBuilderConfig, "platform" | "communicator" | "windows">): SysprepStop {
  if (builder.platform !== "windows" || builder.communicator === "none" || !builder.windows.generalize) return "never";
  const { launch_agent: agent, version } = builder.windows;
  if (agent === "auto" && version === "auto") return "with EC2Config";
  return sysprepShutsDown(agent !== "auto" ? agent : windowsTarget(builder.windows, "").agent) ? "always" : "never";
}
