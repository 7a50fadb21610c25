import type { Reporter } from "../report/reporter.js";
import type { CleanupStack } from "./cleanup-stack.js";

export interface StepContext {
  /** Aborted on Ctrl-C or SIGTERM; every long operation takes it. */
  signal: AbortSignal;
  report: Reporter;
  cleanup: CleanupStack;
}

/**
 * One step of a build: it reads what earlier steps produced (`In`) and adds what it produces
 * (`Out`). `run` is a property, not a method, so TypeScript checks `In` contravariantly: a
 * step can only be appended to a pipeline whose earlier steps produce everything it reads.
 */
export interface Step<In, Out> {
  readonly name: string;
  readonly run: (ctx: StepContext, input: Readonly<In>) => Promise<StepResult<Out>>;
}

/** A step's products and an optional one-line summary for the progress output. */
export interface StepResult<Out> {
  output: Out;
  summary?: string;
}
