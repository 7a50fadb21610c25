import { KilnError, CancelledError } from "../errors.js";
import type { Reporter } from "../report/reporter.js";
import { CleanupStack, type CleanupFailure } from "./cleanup-stack.js";
import type { Pipeline } from "./pipeline.js";

export type OnError = "cleanup" | "abort";

export interface RunBuildOptions {
  report: Reporter;
  /** Aborted by the first Ctrl-C: the build stops and cleanup begins. */
  signal: AbortSignal;
  /** Aborted by a second Ctrl-C: cleanup stops too and what is left is listed. */
  cleanupSignal: AbortSignal;
  onError: OnError;
  cleanupTimeoutMs: number;
  /** How long a step may take to stop after the first Ctrl-C before cleanup starts without it. */
  stopGraceMs?: number;
}

/**
 * A failed build: the error that stopped it, with the cleanup failures beside it (never over
 * it) and what was deliberately left behind by `--on-error abort`.
 */
export class BuildError extends KilnError {
  constructor(
    readonly original: unknown,
    readonly cleanupFailures: readonly CleanupFailure[],
    readonly leftBehind: readonly string[],
  ) {
    const base = original instanceof KilnError ? original : undefined;
    const message = original instanceof Error ? original.message : String(original);
    super(base?.code ?? "KILN_INTERNAL", message, {
      exitCode: base?.exitCode ?? 1,
      cause: original,
      ...(base?.hint === undefined ? {} : { hint: base.hint }),
    });
    this.name = "BuildError";
  }
}

/** Runs a pipeline and always unwinds its cleanup stack, whatever happened. */
export async function runBuild<Initial extends object, State extends object>(
  pipeline: Pipeline<Initial, State>,
  initial: Initial,
  options: RunBuildOptions,
): Promise<State> {
  const cleanup = new CleanupStack();
  const { report } = options;
  let state: State;
  try {
    state = await pipeline.run({ signal: options.signal, report, cleanup }, initial, options.stopGraceMs === undefined ? {} : { stopGraceMs: options.stopGraceMs });
  } catch (caught) {
    const error = options.signal.aborted ? new CancelledError() : caught;
    // Abort keeps the work directory to debug in; partial artifacts and caches are still undone.
    const left = options.onError === "abort" && !(error instanceof CancelledError) ? cleanup.keepForDebugging() : [];
    for (const description of left) report.cleanup(description, "left", "kept by --on-error abort");
    const failures = await cleanup.unwind({ succeeded: false, report, signal: options.cleanupSignal, timeoutMs: options.cleanupTimeoutMs });
    throw new BuildError(error, failures, left);
  }
  const failures = await cleanup.unwind({ succeeded: true, report, signal: options.cleanupSignal, timeoutMs: options.cleanupTimeoutMs });
  if (failures.length > 0) {
    throw new BuildError(new KilnError("KILN_CLEANUP_FAILED", "the build produced its artifact, but cleanup failed"), failures, []);
  }
  return state;
}
