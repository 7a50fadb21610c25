/**
 * kiln's error types. Each kind of failure has a stable `code`, a message that names the
 * field, file or value, and a hint that says what to do. The CLI prints `message (hint)`
 * and exits with `exitCode`; anything that is not a KilnError is an internal error.
 */
/** kiln's own error codes: one closed list, so a code is matched by the compiler, not by a pattern. */
export const kilnErrorCodes = [
  "KILN_AUDIT_BAD_PARTITION_TABLE", "KILN_AUDIT_CORRUPT_COMPRESSED", "KILN_AUDIT_CORRUPT_TAR", "KILN_AUDIT_EXT_CORRUPT", "KILN_AUDIT_EXT_UNSUPPORTED",
  "KILN_AUDIT_FAILED", "KILN_AUDIT_NOT_DIRECTORY", "KILN_AUDIT_NOT_EXT", "KILN_AUDIT_NOT_FOUND", "KILN_AUDIT_NOT_TAR", "KILN_AUDIT_PERMISSION",
  "KILN_AUDIT_SARIF_UNWRITABLE", "KILN_AUDIT_TRUNCATED", "KILN_AUDIT_UNKNOWN_FORMAT",
  "KILN_AWS", "KILN_BASE_INVALID", "KILN_BASELINE_INVALID", "KILN_BASELINE_UNREADABLE", "KILN_CANCELLED", "KILN_CHECK_IP_FAILED", "KILN_CLEANUP_FAILED",
  "KILN_COMMAND_FAILED", "KILN_CONFIG_INVALID", "KILN_DEBUGFS", "KILN_ENCRYPTION", "KILN_EXIT_CODE", "KILN_EXIT_STATUS", "KILN_IMAGE_EMPTY", "KILN_IMAGE_FAILED",
  "KILN_IMAGE_NAME_TAKEN", "KILN_INSTANCE_GONE", "KILN_INTERNAL", "KILN_NEEDS_ROOT", "KILN_NO_ADDRESS", "KILN_NOT_WINDOWS", "KILN_NO_DEFAULT_VPC", "KILN_NO_REGION",
  "KILN_NO_SUBNET", "KILN_OPENSSH_HASH", "KILN_OUTPUT_EXISTS", "KILN_PASSWORD_DATA", "KILN_RESOURCES_LEFT", "KILN_RESTART_TIMEOUT", "KILN_SIZE",
  "KILN_SOURCE_IMAGE_AMBIGUOUS", "KILN_SOURCE_IMAGE_NOT_FOUND", "KILN_SPOT_SYSPREP", "KILN_SSH_EXEC", "KILN_SSH_HOST_KEY_MISMATCH", "KILN_SSH_TIMEOUT", "KILN_STILL_MOUNTED",
  "KILN_SUBNET_NOT_FOUND", "KILN_SYSTEM", "KILN_TEMPLATE_UNREADABLE", "KILN_TEST", "KILN_TOOL_MISSING", "KILN_TOOL_TOO_OLD", "KILN_UNSAFE_DIRECTORY", "KILN_USAGE", "KILN_VAR_FILE", "KILN_WAIT_TIMEOUT",
  "KILN_WINDOWS_DOWNLOAD", "KILN_WINDOWS_UPLOAD", "KILN_WINDOWS_VERSION",
  "KILN_TREE_FILE_REFUSED", "KILN_DOWNLOAD_REFUSED", "KILN_UPLOAD_REFUSED",
  "KILN_GRUB", "KILN_NO_KERNEL", "KILN_QEMU", "KILN_BOOT_FAILED", "KILN_TEST_FAILED",
  "KILN_PUBLIC_BLOCKED", "KILN_IMAGE_NOT_FOUND", "KILN_IMAGE_NO_SNAPSHOT", "KILN_SHARE_REFUSED", "KILN_EBS_SNAPSHOT", "KILN_EBS_BLOCK_CORRUPT", "KILN_EBS_BLOCK_SIZE", "KILN_PUBLISH_MISMATCH", "KILN_PUBLISH_RESUME",
] as const;
export type KilnErrorCode = (typeof kilnErrorCodes)[number];

export class KilnError extends Error {
  readonly code: KilnErrorCode;
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(code: KilnErrorCode, message: string, options: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
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
