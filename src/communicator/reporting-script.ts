import type { StepContext } from "../pipeline/step.js";
import type { Communicator } from "./communicator.js";

/**
 * Runs one of kiln's own scripts (clean, harden) as root in the target, reporting each line it
 * prints (`warning: …` as a warning) and returning them. Its stderr goes to the output too, and
 * its last lines into the error when it fails.
 */
export async function runReportingScript(ctx: StepContext, target: Communicator, script: string, what: string): Promise<string[]> {
  const said: string[] = [];
  await target.runScript(script, {
    what,
    signal: ctx.signal,
    interpreter: "/bin/sh",
    onStdoutLine: (line) => {
      if (line.startsWith("warning: ")) return ctx.report.warn(line.slice(9));
      said.push(line);
      ctx.report.info(line);
    },
    onStderrLine: (line) => ctx.report.output(what, line),
  });
  return said;
}
