/**
 * kiln's error types. Each kind of failure has a stable `code`, a message that names the
 * field, file or value, and a hint that says what to do. The CLI prints `message (hint)`
 * and exits with `exitCode`; anything that is not a KilnError is an internal error.
 */
export class KilnError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(code: string, message: string, options: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "KilnError";
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** One problem in a template, located in its file. */
export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  /** Dotted path inside the template, e.g. `builders.0.base.suite`; empty for the whole file. */
  path: string;
  message: string;
  hint?: string;
}

export function formatProblem(p: ConfigProblem): string {
  const where = `${p.file}:${p.line}:${p.column}`;
  const path = p.path === "" ? "" : ` ${p.path}:`;
  const hint = p.hint === undefined ? "" : ` (${p.hint})`;
  return `${where}${path} ${p.message}${hint}`;
}

/** Every problem found in a template at once; exit code 2 like other usage errors. */
export class ConfigError extends KilnError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super("KILN_CONFIG_INVALID", `template has ${count}:\n${problems.map(formatProblem).join("\n")}`, { exitCode: 2 });
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** A wrong flag or argument on the command line. */
export class UsageError extends KilnError {
  constructor(message: string, hint?: string) {
    super("KILN_USAGE", message, { exitCode: 2, ...(hint === undefined ? {} : { hint }) });
    this.name = "UsageError";
  }
}

/** The build was cancelled (Ctrl-C, SIGTERM); exit code 130 as shells expect. */
export class CancelledError extends KilnError {
  constructor(reason = "build cancelled") {
    super("KILN_CANCELLED", reason, { exitCode: 130 });
    this.name = "CancelledError";
  }
}

/** A child kiln process already reported its outcome; this one only exits with its code. */
export class ExitStatus extends KilnError {
  constructor(exitCode: number) {
    super("KILN_EXIT_STATUS", "", { exitCode });
    this.name = "ExitStatus";
  }
}

export function isAbortError(error: unknown): boolean {
  return error instanceof Error && (error.name === "AbortError" || error instanceof CancelledError);
}
