import { WindowsCommunicator } from "../communicator/windows-communicator.js";
import { KilnError } from "../errors.js";
import { CommandError } from "../system/command-error.js";
import type { PowershellProvisionerConfig, WindowsRestartProvisionerConfig } from "../template/schema.js";
import { provisionerScript } from "../windows/powershell.js";
import type { ProvisionerRun } from "./provisioner.js";
import { provisionerScripts } from "./scripts.js";

function windows(run: ProvisionerRun): WindowsCommunicator {
  if (run.communicator instanceof WindowsCommunicator) return run.communicator;
  throw new KilnError("KILN_NOT_WINDOWS", `${run.label} needs a Windows build instance`, { hint: "set platform: windows on the builder" });
}

/**
 * Inline lines (one script), a .ps1 file or several, each wrapped so errors stop it and its
 * exit code (an `exit`, or the last native command's $LASTEXITCODE) decides: anything not in
 * valid_exit_codes fails the build with the code and the last lines of stderr.
 */
export async function runPowershellProvisioner(config: PowershellProvisionerConfig, run: ProvisionerRun): Promise<void> {
  const target = windows(run);
  const scripts = await provisionerScripts(config, run.templateDirectory);
  for (const script of scripts) {
    const what = scripts.length === 1 ? run.label : `${run.label}, ${script.name}`;
    try {
      await target.runScript(provisionerScript(script.text, config.env), {
        what, signal: run.ctx.signal,
        onStdoutLine: (line) => run.ctx.report.output(run.label, line),
        onStderrLine: (line) => run.ctx.report.output(run.label, line),
      });
    } catch (error) {
      // A code the template lists as success is one.
      if (error instanceof CommandError && error.commandExitCode !== null && config.valid_exit_codes.includes(error.commandExitCode)) {
        run.ctx.report.info(`${what}: exit code ${error.commandExitCode}, which valid_exit_codes accepts`);
        continue;
      }
      throw error;
    }
    if (!config.valid_exit_codes.includes(0)) {
      throw new KilnError("KILN_EXIT_CODE", `${what} exited with code 0, which is not in valid_exit_codes (${config.valid_exit_codes.join(", ")})`);
    }
  }
}

export async function runWindowsRestart(config: WindowsRestartProvisionerConfig, run: ProvisionerRun): Promise<void> {
  await windows(run).restart(config.restart_command, config.restart_timeout, config.restart_check_command, { signal: run.ctx.signal, report: run.ctx.report, what: run.label });
}
