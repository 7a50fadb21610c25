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
export interface Step<In, Out, Facts = unknown> {
  readonly name: string;
  readonly run: (ctx: StepContext, input: Readonly<In>) => Promise<StepResult<Out>>;
  /**
   * What the step would do, from what is known before anything runs (`Facts`: the template and
   * the read-only lookups of `kiln plan`): the calls it makes and what it creates. Beside `run`,
   * so a step cannot be added, renamed or changed without its plan.
   */
  readonly plan: (facts: Facts) => StepPlan;
}

/** A resource a step would create, with its tags. */
export interface PlannedResource {
  type: string;
  name: string;
  tags?: Record<string, string>;
}

/** One step of a plan: the cloud calls it makes (read-only ones marked), what it creates. */
export interface StepPlan {
  calls: string[];
  creates: PlannedResource[];
  note?: string;
}

/** A step's products and an optional one-line summary for the progress output. */
export interface StepResult<Out> {
  output: Out;
  summary?: string;
}
