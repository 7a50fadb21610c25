import { exec } from "../system/exec.js";
import type { ShellLocalProvisionerConfig } from "../template/schema.js";
import type { ProvisionerRun } from "./provisioner.js";
import { provisionerScripts } from "./scripts.js";

/**
 * Commands on this machine, not in the image (Packer's shell-local): run by `/bin/sh -e` in the
 * template's directory, with this machine's environment plus the provisioner's `env`.
 */
export async function runShellLocal(config: ShellLocalProvisionerConfig, run: ProvisionerRun): Promise<void> {
  const scripts = await provisionerScripts(config, run.templateDirectory);
  for (const script of scripts) {
    await exec("/bin/sh", ["-e", "-c", script.text, "shell-local"], {
      what: scripts.length === 1 ? run.label : `${run.label}, ${script.name}`,
      display: "its commands",
      signal: run.ctx.signal,
      cwd: run.templateDirectory,
      env: { ...process.env, ...config.env },
      onStdoutLine: (line) => run.ctx.report.output(run.label, line),
      onStderrLine: (line) => run.ctx.report.output(run.label, line),
    });
  }
}
