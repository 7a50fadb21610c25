import { setTimeout as sleep } from "node:timers/promises";
import { CancelledError, KilnError } from "../../errors.js";
import type { Reporter } from "../../report/reporter.js";

export interface PollOptions {
  signal: AbortSignal;
  report: Reporter;
  delaySeconds: number;
  timeoutSeconds: number;
  /** The setting that makes this wait longer, named when it times out. */
  setting?: string;
}

/**
 * Polls until `check` returns a value. Unlike the SDK's waiters it stops at once on Ctrl-C, lets
 * a real error (access denied) through instead of retrying it until the deadline, says what it
 * waits for every minute, and times out with one clear message.
 */
export async function pollUntil<T>(what: string, check: () => Promise<T | undefined>, options: PollOptions): Promise<T> {
  const started = Date.now();
  let said = started;
  for (;;) {
    if (options.signal.aborted) throw new CancelledError();
    const done = await check();
    if (done !== undefined) return done;
    const now = Date.now();
    if (now - started >= options.timeoutSeconds * 1000) {
      throw new KilnError("KILN_WAIT_TIMEOUT", `gave up waiting for ${what} after ${options.timeoutSeconds}s (polled every ${options.delaySeconds}s)`, {
        hint: `raise ${options.setting ?? "wait.timeout_seconds"} if it only needs longer, or look at the resource in the AWS console`,
      });
    }
    if (now - said >= 60_000) {
      options.report.info(`still waiting for ${what} (${Math.round((now - started) / 1000)}s)`);
      said = now;
    }
    await sleep(options.delaySeconds * 1000, undefined, { signal: options.signal }).catch(() => { throw new CancelledError(); });
  }
}
