import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exec } from "../system/exec.js";
import type { ShellLocalProvisionerConfig } from "../template/schema.js";
import type { ProvisionerRun } from "./provisioner.js";
import { provisionerScripts } from "./scripts.js";

/**
 * Commands on this machine, not in the image (Packer's shell-local): run by `/bin/sh -e` in the
 * template's directory, with this machine's environment plus the provisioner's `env`.
 *
 * The script goes to sh as a file in a private (0700, mkdtemp) directory, never as `sh -c TEXT`:
 * a process's command line is readable by every local user (/proc/PID/cmdline, `ps`), and a
 * script often carries a token. Its `env` is in the environment, which only its owner can read.
 */
export async function runShellLocal(config: ShellLocalProvisionerConfig, run: ProvisionerRun): Promise<void> {
  const scripts = await provisionerScripts(config, run.templateDirectory);
  const directory = await mkdtemp(join(tmpdir(), "kiln-shell-local-"));
  try {
    for (const [index, script] of scripts.entries()) {
      const file = join(directory, `script-${index}.sh`);
      await writeFile(file, script.text, { mode: 0o600, flag: "wx" });
      await exec("/bin/sh", ["-e", file], {
        what: scripts.length === 1 ? run.label : `${run.label}, ${script.name}`,
        display: "its commands",
        signal: run.ctx.signal,
        cwd: run.templateDirectory,
        env: { ...process.env, ...config.env },
        onStdoutLine: (line) => run.ctx.report.output(run.label, line),
        onStderrLine: (line) => run.ctx.report.output(run.label, line),
      });
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
