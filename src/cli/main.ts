import { Command, CommanderError } from "commander";
import { ConfigError, ExitStatus, KilnError } from "../errors.js";
import { BuildError } from "../pipeline/run-build.js";
import { kilnVersion } from "../version.js";
import { auditCommand } from "./commands/audit.js";
import { buildCommand } from "./commands/build.js";
import { cleanupCommand } from "./commands/cleanup.js";
import { inspectCommand } from "./commands/inspect.js";
import { schemaCommand } from "./commands/schema.js";
import { sweepCommand } from "./commands/sweep.js";
import { validateCommand } from "./commands/validate.js";
import { cliContext, processIo, type CliContext, type CliIo } from "./io.js";
import { packerFlags } from "./shared-options.js";
import { convertCommand } from "./commands/convert.js";
import { planCommand } from "./commands/plan.js";
import { testCommand } from "./commands/test.js";
import { publishCommand } from "./commands/publish.js";
import { shareCommand } from "./commands/share.js";

export function createProgram(context: CliContext): Command {
  const { io } = context;
  const program = new Command("kiln")
    .description("bake machine images that are safe to share")
    .version(kilnVersion)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showHelpAfterError("(run kiln help for usage)");
  buildCommand(program, context);
  validateCommand(program, context);
  inspectCommand(program, context);
  schemaCommand(program, context);
  auditCommand(program, context);
  cleanupCommand(program, context);
  sweepCommand(program, context);
  convertCommand(program, context);
  planCommand(program, context);
  testCommand(program, context);
  publishCommand(program, context);
  shareCommand(program, context);
  return program;
}

/** Runs the CLI and returns its exit code; known errors become one message, never a stack trace. */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const context = cliContext(io);
  try {
    await createProgram(context).parseAsync(packerFlags(argv), { from: "user" });
    return 0;
  } catch (error) {
    return reportError(error, context);
  }
}

/** `io` redacts: the error that stopped a build may quote a provisioner's stderr. */
function reportError(error: unknown, context: CliContext): number {
  const { io } = context;
  const say = (line: string): void => io.err(line);
  if (error instanceof CommanderError) {
    // Commander already printed its message; help and version exit 0.
    return error.exitCode === 0 ? 0 : 2;
  }
  if (error instanceof ExitStatus) return error.exitCode;
  if (error instanceof ConfigError) {
    // Its lines name template keys ("variables.token: is required"): not values to hide.
    context.structuralErr(`error: ${error.message}`);
    return error.exitCode;
  }
  if (error instanceof KilnError) {
    say(`error: ${error.message}${error.hint === undefined ? "" : `\n  (${error.hint})`}`);
    if (error instanceof BuildError) {
      for (const failure of error.cleanupFailures) {
        say(`cleanup also failed: ${failure.description}: ${failure.error instanceof Error ? failure.error.message : String(failure.error)}`);
      }
      for (const left of error.leftBehind) say(`left behind: ${left}`);
      if (error.cleanupFailures.length > 0) say("remove what cleanup could not before building again");
      const inner = error.original;
      if (!(inner instanceof KilnError)) say(inner instanceof Error && inner.stack !== undefined ? `internal error:\n${inner.stack}` : `internal error: ${String(inner)}`);
    }
    return error.exitCode;
  }
  say(`internal error (please report it): ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  return 70;
}
