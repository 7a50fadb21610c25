import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { ShellProvisionerConfig } from "../template/schema.js";
import type { ProvisionerRun } from "./provisioner.js";

/** Runs inline commands (as one `sh -e` script) or a script file; output is streamed with a prefix. */
export async function runShellProvisioner(config: ShellProvisionerConfig, run: ProvisionerRun): Promise<void> {
  const script = config.script !== undefined
    ? await readFile(resolve(run.templateDirectory, config.script), "utf8")
    : `${(config.inline ?? []).join("\n")}\n`;
  await run.communicator.runScript(script, {
    what: run.label,
    signal: run.ctx.signal,
    env: config.env,
    onStdoutLine: (line) => run.ctx.report.output(run.label, line),
    onStderrLine: (line) => run.ctx.report.output(run.label, line),
  });
}
