import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { CancelledError } from "../errors.js";
import { awsError } from "../builders/amazon-ebs/aws-errors.js";
import type { RateBudget } from "./rate-budget.js";

/** AWS's answers that mean "slow down": the EBS direct APIs say RequestThrottledException. */
const throttling = new Set(["RequestThrottledException", "ConcurrentLimitExceededException", "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"]);
/** EBS direct's ValidationException reasons that are the service's load, not the request's fault (coldsnap retries every block error). */
const transientReasons = new Set(["CONFLICTING_BLOCK_UPDATE", "WRITE_REQUEST_TIMEOUT"]);
/** Answers worth the same call again: the service's own trouble, or the network's. */
const transient = new Set(["InternalServerException", "InternalError", "ServiceUnavailable", "ServiceUnavailableException", "TimeoutError", "RequestTimeout", "RequestTimeoutException"]);
const network = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "ECONNABORTED", "EAI_AGAIN", "ENOTFOUND"]);

export type CallOutcome = "throttled" | "transient" | "fatal";

/** What an error from one EBS direct call means for the pool. */
export function classify(error: unknown): CallOutcome {
  const e = error as { name?: string; code?: string; Reason?: string; message?: string; $metadata?: { httpStatusCode?: number }; $response?: unknown };
  const status = e.$metadata?.httpStatusCode;
  if (throttling.has(e.name ?? "") || status === 429) return "throttled";
  // Seen from AWS under load: "Failed to read block data" (nanovms/ops#1268).
  if (e.name === "ValidationException" && (transientReasons.has(e.Reason ?? "") || /failed to read block data/i.test(e.message ?? ""))) return "transient";
  if (transient.has(e.name ?? "") || network.has(e.code ?? "") || (status !== undefined && status >= 500)) return "transient";
  // An answer the SDK could not read (a connection cut mid-answer) is the network's too.
  if (status === undefined && e.name !== undefined && /socket|hang up|aborted|premature|ECONNRESET/i.test(`${e.name} ${(error as Error).message}`)) return "transient";
  return "fatal";
}

export interface PoolOptions {
  budget: RateBudget;
  signal: AbortSignal;
  /** Tries of one item after service or network errors (throttling is waited out, not counted). */
  attempts?: number;
  /** Throttled tries of one item before giving up: minutes of AWS saying "slow down". */
  throttledAttempts?: number;
  /** What the pool is doing, for the error of a call that failed for good. */
  doing: (item: number) => string;
}

/**
 * Runs `call` for every item, as many at once as the budget allows, each retried on its own:
 * a throttled call waits and goes again (the budget slows everyone), a transient failure goes
 * again after a backoff, up to `attempts`. The first error that is neither stops the pool and
 * is thrown, named by `doing`; the calls in flight are aborted.
 */
export async function runPool(items: readonly number[], call: (item: number, signal: AbortSignal) => Promise<void>, options: PoolOptions): Promise<void> {
  const { budget, attempts = 8, throttledAttempts = 60 } = options;
  const stop = new AbortController();
  // Each waiting worker and each call in flight listens on it (64 at most): not a leak.
  setMaxListeners(0, stop.signal);
  const forward = (): void => stop.abort();
  options.signal.addEventListener("abort", forward, { once: true });
  let next = 0;
  let failure: unknown;
  const fail = (error: unknown): void => {
    // Recorded and the others stopped before the slot is given back: no item starts after a failure.
    failure ??= error;
    stop.abort();
  };
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as number;
      let tries = 0;
      let throttles = 0;
      for (;;) {
        try {
          await budget.acquire(stop.signal);
        } catch (error) {
          fail(options.signal.aborted ? new CancelledError() : error);
          return;
        }
        let outcome: CallOutcome | "ok" = "ok";
        let caught: unknown;
        try {
          await call(item, stop.signal);
        } catch (error) {
          caught = error;
          outcome = stop.signal.aborted ? "fatal" : classify(error);
        }
        const retry = (outcome === "throttled" && ++throttles < throttledAttempts) || (outcome === "transient" && ++tries < attempts);
        if (outcome !== "ok" && !retry) fail(options.signal.aborted ? new CancelledError() : awsError(options.doing(item), caught));
        budget.release(outcome === "ok" ? "ok" : outcome === "throttled" ? "throttled" : "failed");
        if (outcome === "ok" || failure !== undefined) break;
        if (outcome === "transient") await sleep(Math.min(250 * 2 ** tries, 10_000) * (0.5 + Math.random() / 2), undefined, { signal: stop.signal }).catch(() => undefined);
      }
    }
  };
  try {
    // Workers take items one at a time, so a narrower budget simply leaves some waiting.
    const workers = Array.from({ length: Math.min(items.length, 64) }, () => worker().catch(fail));
    await Promise.all(workers);
    if (failure !== undefined) throw failure;
  } finally {
    options.signal.removeEventListener("abort", forward);
  }
}

/** One EBS direct call, retried as a pool's block is (the client itself tries once). */
export async function retried<T>(doing: string, budget: RateBudget, signal: AbortSignal, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  let answer: T | undefined;
  await runPool([0], async (_, abortSignal) => { answer = await call(abortSignal); }, { budget, signal, doing: () => doing });
  return answer as T;
}
