import { KilnError } from "../errors.js";

/** A command kiln ran exited non-zero; the message names it, its exit code and its last stderr lines. */
export class CommandError extends KilnError {
  readonly command: string;
  readonly commandExitCode: number | null;
  readonly stderrTail: readonly string[];

  constructor(what: string, command: string, code: number | null, signal: NodeJS.Signals | null, stderrTail: readonly string[], hint?: string) {
    const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = stderrTail.length === 0 ? "" : `\n  last lines of stderr:\n${stderrTail.map((l) => `    ${l}`).join("\n")}`;
    super("KILN_COMMAND_FAILED", `${what} failed: ${command} ${how}${tail}`, hint === undefined ? {} : { hint });
    this.name = "CommandError";
    this.command = command;
    this.commandExitCode = code;
    this.stderrTail = stderrTail;
  }
}
