import { CancelledError, KilnError } from "../errors.js";
import type { Step, StepContext, StepPlan } from "./step.js";

// Steps of different types live in one list; `then` below keeps the chain type-safe.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyStep = Step<any, any, any>;

/**
 * An ordered list of typed steps. `then` appends a step whose input the steps before it
 * produce, so the state passed along is a typed record, not a bag of casts. `Facts` is what
 * every step's plan reads.
 */
export class Pipeline<Initial extends object, State extends object, Facts = unknown> {
  private constructor(private readonly steps: readonly AnyStep[]) {}

  static start<Initial extends object, Facts = unknown>(): Pipeline<Initial, Initial, Facts> {
    return new Pipeline<Initial, Initial, Facts>([]);
  }

  then<Out extends object>(step: Step<State, Out, Facts>): Pipeline<Initial, State & Out, Facts> {
    return new Pipeline<Initial, State & Out, Facts>([...this.steps, step]);
  }

  /**
   * A step that belongs to some builds only (Windows' password, a communicator's steps): chosen
   * here, when the list is composed, rather than skipped inside the step. Later steps may read
   * its products only as optional.
   */
  thenIf<Out extends object>(include: boolean, step: Step<State, Out, Facts>): Pipeline<Initial, State & Partial<Out>, Facts> {
    return include ? this.then(step) : new Pipeline<Initial, State & Partial<Out>, Facts>(this.steps);
  }

  /** The same steps, seen as producing only `Result` (what a caller reads), whichever way they were composed. */
  producing<Result extends object>(): State extends Result ? Pipeline<Initial, Result, Facts> : never {
    return new Pipeline<Initial, Result, Facts>(this.steps) as State extends Result ? Pipeline<Initial, Result, Facts> : never;
  }

  get stepNames(): string[] {
    return this.steps.map((s) => s.name);
  }

  /** Every step's own plan, in order. */
  plan(facts: Facts): (StepPlan & { step: string })[] {
    return this.steps.map((s) => ({ step: s.name, ...(s.plan(facts) as StepPlan) }));
  }

  /**
   * Runs the steps in order. After a cancel, a step gets `stopGraceMs` to stop by itself (a
   * command it runs is killed and waited for); one that waits on something no signal reaches is
   * left behind, so Ctrl-C always gets to cleanup.
   */
  async run(ctx: StepContext, initial: Initial, { stopGraceMs = 5000 }: { stopGraceMs?: number } = {}): Promise<State> {
    let state: object = initial;
    for (const [i, step] of this.steps.entries()) {
      if (ctx.signal.aborted) throw new CancelledError();
      ctx.report.stepStarted(i + 1, this.steps.length, step.name);
      const running = step.run(ctx, state).catch((error: unknown) => {
        throw systemErrorIn(step.name, error);
      });
      const result = await untilAbandoned(running, ctx, step.name, stopGraceMs);
      ctx.report.stepFinished(step.name, result.summary);
      state = { ...state, ...result.output };
    }
    return state as State;
  }
}

/** The step's result, or CancelledError once it has ignored a cancel for `graceMs`. */
function untilAbandoned<T>(running: Promise<T>, ctx: StepContext, stepName: string, graceMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const abandoned = new Promise<never>((_, reject) => {
    onAbort = () => {
      timer = setTimeout(() => {
        ctx.report.warn(`${stepName} did not stop within ${graceMs / 1000}s of the cancel; cleaning up without it`);
        reject(new CancelledError());
      }, graceMs);
    };
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([running, abandoned]).finally(() => {
    clearTimeout(timer);
    if (onAbort !== undefined) ctx.signal.removeEventListener("abort", onAbort);
  });
}

/**
 * A failed system call (no space, no permission, a file in the way) is a clear error naming
 * the step, not an internal one with a stack trace.
 */
function systemErrorIn(stepName: string, error: unknown): unknown {
  const errno = error as NodeJS.ErrnoException;
  if (error instanceof KilnError || !(error instanceof Error) || typeof errno.code !== "string" || errno.syscall === undefined) return error;
  const hints: Record<string, string> = {
    ENOSPC: "free some disk space, or point --work-dir / --output-dir elsewhere",
    EACCES: "check the permissions of that path",
    EEXIST: "remove it, or choose another path",
    ENOENT: "check that the path exists",
  };
  const hint = hints[errno.code];
  return new KilnError("KILN_SYSTEM", `${stepName}: ${error.message}`, { cause: error, ...(hint === undefined ? {} : { hint }) });
}
