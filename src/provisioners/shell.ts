import type { ShellProvisionerConfig } from "../template/schema.js";
import type { ProvisionerRun } from "./provisioner.js";
import { provisionerScripts } from "./scripts.js";

/**
 * Runs inline commands (as one `sh -e` script), a script file or several in order, each with
 * the provisioner's environment and execute_command; output is streamed with a prefix.
 */
export async function runShellProvisioner(config: ShellProvisionerConfig, run: ProvisionerRun): Promise<void> {
  const scripts = await provisionerScripts(config, run.templateDirectory);
  for (const script of scripts) {
    const what = scripts.length === 1 ? run.label : `${run.label}, ${script.name}`;
    await run.communicator.runScript(script.text, {
      what,
      signal: run.ctx.signal,
      env: config.env,
      ...(config.execute_command === undefined ? {} : { executeCommand: config.execute_command }),
      onStdoutLine: (line) => run.ctx.report.output(run.label, line),
      onStderrLine: (line) => run.ctx.report.output(run.label, line),
    });
  }
}
