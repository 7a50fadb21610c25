import { setTimeout as sleep } from "node:timers/promises";
import { CancelledError } from "../errors.js";

/**
 * How many EBS direct calls may be in flight at once, shared by every pool of one run (an
 * upload and a read-back, or several regions' copies of work): more when calls succeed, half as
 * many and a pause when AWS answers that it is throttling (additive increase, multiplicative
 * decrease, as TCP does). Throttling thus slows the work down; it never fails it.
 */
export class RateBudget {
  private window: number;
  private inFlight = 0;
  private pausedUntil = 0;
  private pauseMs = 0;
  private readonly waiting: (() => void)[] = [];
  /** Throttling answers met, for the summary. */
  throttled = 0;

  constructor(private readonly max: number, start = Math.min(max, 16)) {
    this.window = Math.max(1, start);
  }

  /** Calls allowed in flight now. */
  get limit(): number {
    return Math.floor(this.window);
  }

  /** Waits for a free slot (and out any pause after throttling). */
  async acquire(signal: AbortSignal): Promise<void> {
    for (;;) {
      if (signal.aborted) throw new CancelledError();
      const pause = this.pausedUntil - Date.now();
      if (pause > 0) {
        await sleep(pause, undefined, { signal }).catch(() => { throw new CancelledError(); });
        continue;
      }
      if (this.inFlight < this.limit) {
        this.inFlight++;
        return;
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => { signal.removeEventListener("abort", wake); resolve(); };
        this.waiting.push(wake);
        signal.addEventListener("abort", wake, { once: true });
      });
    }
  }

  /** A call ended; `throttled` when AWS said to slow down. */
  release(outcome: "ok" | "throttled" | "failed"): void {
    this.inFlight--;
    if (outcome === "throttled") {
      this.throttled++;
      // The answers of calls that were in flight together are one slowdown, not one each (as
      // TCP halves its window once per round trip): else a burst would pause for minutes.
      const now = Date.now();
      if (now >= this.pausedUntil) {
        this.window = Math.max(1, this.window / 2);
        this.pauseMs = Math.min(Math.max(this.pauseMs * 2, 100), 5000);
        this.pausedUntil = now + this.pauseMs * (0.5 + Math.random() / 2);
      }
    } else if (outcome === "ok") {
      this.window = Math.min(this.max, this.window + 1 / this.window);
      this.pauseMs = Math.max(0, this.pauseMs / 2 - 1);
    }
    for (const wake of this.waiting.splice(0)) wake();
  }
}
