import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { ShellProvisionerConfig } from "../template/schema.js";
import type { ProvisionerRun } from "./provisioner.js";

/**
 * Runs inline commands (as one `sh -e` script), a script file or several in order, each with
 * the provisioner's environment and execute_command; output is streamed with a prefix.
 */
export async function runShellProvisioner(config: ShellProvisionerConfig, run: ProvisionerRun): Promise<void> {
  const files = config.scripts ?? (config.script === undefined ? [] : [config.script]);
  // Every file is read before the first runs: a missing third script fails before the first changes anything.
  const scripts = files.length === 0
    ? [{ name: "inline", text: `${(config.inline ?? []).join("\n")}\n` }]
    : await Promise.all(files.map(async (name) => ({ name, text: await readFile(resolve(run.templateDirectory, name), "utf8") })));
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
