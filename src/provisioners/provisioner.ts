import type { Communicator } from "../communicator/communicator.js";
import type { StepContext } from "../pipeline/step.js";
import type { ProvisionerConfig } from "../template/schema.js";
import { runFileProvisioner } from "./file.js";
import { runPowershellProvisioner, runWindowsRestart } from "./powershell.js";
import { runShellProvisioner } from "./shell.js";
import { runShellLocal } from "./shell-local.js";

export interface ProvisionerRun {
  ctx: StepContext;
  communicator: Communicator;
  /** Relative paths in the template are resolved against this directory. */
  templateDirectory: string;
  /** "provisioner 2 (shell)", for output prefixes and errors. */
  label: string;
}

/** Runs one provisioner through whatever communicator the builder provides. */
export function runProvisioner(config: ProvisionerConfig, run: ProvisionerRun): Promise<void> {
  switch (config.type) {
    case "shell":
      return runShellProvisioner(config, run);
    case "file":
      return runFileProvisioner(config, run);
    case "powershell":
      return runPowershellProvisioner(config, run);
    case "windows-restart":
      return runWindowsRestart(config, run);
    case "shell-local":
      return runShellLocal(config, run);
  }
}
