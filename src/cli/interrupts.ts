import type { Reporter } from "../report/reporter.js";

export interface Interrupts {
  /** Aborted by the first Ctrl-C or SIGTERM: the build stops, cleanup starts. */
  build: AbortSignal;
  /** Aborted by the second: cleanup stops, and what is left is listed. */
  cleanup: AbortSignal;
  dispose(): void;
}

/** First signal cancels the build, second cancels its cleanup. */
export function listenForInterrupts(report: Reporter): Interrupts {
  const build = new AbortController();
  const cleanup = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!build.signal.aborted) {
      report.warn(`${signal}: stopping the build and cleaning up (send it again to stop cleanup and list what is left)`);
      build.abort();
    } else if (!cleanup.signal.aborted) {
      report.warn(`${signal} again: stopping cleanup`);
      cleanup.abort();
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    build: build.signal,
    cleanup: cleanup.signal,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
