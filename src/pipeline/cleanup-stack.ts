import type { Reporter } from "../report/reporter.js";

export type Undo = (signal: AbortSignal) => Promise<void>;

interface Entry {
  description: string;
  undo: Undo;
  /** Artifacts are undone only when the build fails; temporary resources always. */
  when: "always" | "on-failure";
  /** Kept by `--on-error abort` for debugging (the work directory), instead of undone. */
  keepOnAbort: boolean;
}

export interface DeferOptions {
  keepOnAbort?: boolean;
}

export interface CleanupFailure {
  description: string;
  error: unknown;
}

export interface UnwindOptions {
  succeeded: boolean;
  report: Reporter;
  /** Aborts the remaining undos (a second Ctrl-C); what is left is reported, not undone. */
  signal: AbortSignal;
  /** Each undo's own deadline. */
  timeoutMs: number;
}

/**
 * The undo of every resource a build created, registered the moment the resource exists and
 * run in reverse order. Failures are collected, never thrown, so they are reported beside
 * the error that stopped the build rather than over it.
 */
export class CleanupStack {
  private readonly entries: Entry[] = [];

  /** Registers the undo of a temporary resource; returns a function that undoes it now. */
  defer(description: string, undo: Undo, options: DeferOptions = {}): (signal: AbortSignal) => Promise<void> {
    return this.push({ description, undo, when: "always", keepOnAbort: options.keepOnAbort ?? false });
  }

  /** Registers the undo of an artifact, which a successful build keeps. */
  deferOnFailure(description: string, undo: Undo, options: DeferOptions = {}): void {
    this.push({ description, undo, when: "on-failure", keepOnAbort: options.keepOnAbort ?? false });
  }

  /** What an unwind would undo, newest first. */
  pending(succeeded: boolean): string[] {
    return this.entries.filter((e) => !succeeded || e.when === "always").map((e) => e.description).reverse();
  }

  async unwind(options: UnwindOptions): Promise<CleanupFailure[]> {
    const failures: CleanupFailure[] = [];
    while (this.entries.length > 0) {
      const entry = this.entries.pop() as Entry;
      if (options.succeeded && entry.when === "on-failure") continue;
      if (options.signal.aborted) {
        options.report.cleanup(entry.description, "left", "cleanup was interrupted");
        failures.push({ description: entry.description, error: new Error("cleanup was interrupted") });
        continue;
      }
      try {
        await runWithDeadline(entry.undo, options.signal, options.timeoutMs);
        options.report.cleanup(entry.description, "done");
      } catch (error) {
        options.report.cleanup(entry.description, "failed", error instanceof Error ? error.message : String(error));
        failures.push({ description: entry.description, error });
      }
    }
    return failures;
  }

  /**
   * Forgets the undos of what `--on-error abort` keeps for debugging (the work directory and
   * what lives in it) without running them; returns their descriptions, newest first.
   */
  keepForDebugging(): string[] {
    const kept = this.entries.filter((e) => e.keepOnAbort);
    for (const entry of kept) this.entries.splice(this.entries.indexOf(entry), 1);
    return kept.map((e) => e.description).reverse();
  }

  private push(entry: Entry): (signal: AbortSignal) => Promise<void> {
    this.entries.push(entry);
    return async (signal) => {
      const at = this.entries.indexOf(entry);
      if (at === -1) return;
      await entry.undo(signal);
      this.entries.splice(this.entries.indexOf(entry), 1);
    };
  }
}

async function runWithDeadline(undo: Undo, outer: AbortSignal, timeoutMs: number): Promise<void> {
  // A timer of our own rather than AbortSignal.timeout, whose unref'd timer would let the
  // process exit in the middle of a hung undo.
  const deadline = new AbortController();
  const signal = AbortSignal.any([outer, deadline.signal]);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Error(outer.aborted ? "cleanup was interrupted" : `did not finish within ${timeoutMs / 1000}s`));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  try {
    await Promise.race([undo(signal), aborted]);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
  }
}
