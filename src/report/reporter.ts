import { Redactor } from "./redact.js";

/** What a build tells its user. Renderers (text, JSON lines) decide how it looks. */
export interface Reporter {
  readonly redactor: Redactor;
  stepStarted(index: number, total: number, name: string): void;
  stepFinished(name: string, summary: string | undefined): void;
  /** A detail line belonging to the current step. */
  info(message: string): void;
  warn(message: string): void;
  /** A line a provisioner or tool printed, with a prefix naming it. */
  output(source: string, line: string): void;
  cleanup(description: string, outcome: "done" | "failed" | "skipped" | "left", detail?: string): void;
  /** Elapsed seconds since the build started, for messages that quote it. */
  elapsed(): number;
}

type Event =
  | { event: "step"; index: number; total: number; name: string }
  | { event: "step-done"; name: string; summary?: string }
  | { event: "info" | "warn"; message: string }
  | { event: "output"; source: string; line: string }
  | { event: "cleanup"; description: string; outcome: string; detail?: string };

abstract class BaseReporter implements Reporter {
  private readonly started = Date.now();

  constructor(
    protected readonly write: (line: string) => void,
    readonly redactor: Redactor = new Redactor(),
  ) {}

  elapsed(): number {
    return (Date.now() - this.started) / 1000;
  }

  protected emit(line: string): void {
    this.write(this.redactor.redact(line));
  }

  abstract stepStarted(index: number, total: number, name: string): void;
  abstract stepFinished(name: string, summary: string | undefined): void;
  abstract info(message: string): void;
  abstract warn(message: string): void;

  // Through the redactor's per-source stream: a private key printed across lines is masked whole.
  output(source: string, line: string): void {
    this.outputLine(source, this.redactor.redactLine(source, line));
  }

  protected abstract outputLine(source: string, line: string): void;
  abstract cleanup(description: string, outcome: "done" | "failed" | "skipped" | "left", detail?: string): void;
}

/** Line-based progress a CI log can keep: `==> [12.3s] 3/8 provision`. */
export class TextReporter extends BaseReporter {
  private stamp(): string {
    return `[${this.elapsed().toFixed(1)}s]`;
  }

  stepStarted(index: number, total: number, name: string): void {
    this.emit(`==> ${this.stamp()} ${index}/${total} ${name}`);
  }

  stepFinished(name: string, summary: string | undefined): void {
    if (summary !== undefined) this.emit(`    ${this.stamp()} ${name}: ${summary}`);
  }

  info(message: string): void {
    this.emit(`    ${message}`);
  }

  warn(message: string): void {
    this.emit(`    warning: ${message}`);
  }

  protected outputLine(source: string, line: string): void {
    this.emit(`    ${source}: ${line}`);
  }

  cleanup(description: string, outcome: "done" | "failed" | "skipped" | "left", detail?: string): void {
    const tail = detail === undefined ? "" : `: ${detail}`;
    this.emit(`<== ${this.stamp()} ${outcome === "done" ? "" : `${outcome} `}${description}${tail}`);
  }
}

/** One JSON object per line, for machines. */
export class JsonReporter extends BaseReporter {
  // Fields are redacted before serialising: JSON escaping would hide a secret holding " or \.
  private send(event: Event): void {
    const fields = Object.entries(event).map(([k, v]) => [k, typeof v === "string" ? this.redactor.redact(v) : v]);
    this.write(JSON.stringify({ time: this.elapsed(), ...Object.fromEntries(fields) }));
  }

  stepStarted(index: number, total: number, name: string): void {
    this.send({ event: "step", index, total, name });
  }

  stepFinished(name: string, summary: string | undefined): void {
    this.send(summary === undefined ? { event: "step-done", name } : { event: "step-done", name, summary });
  }

  info(message: string): void {
    this.send({ event: "info", message });
  }

  warn(message: string): void {
    this.send({ event: "warn", message });
  }

  protected outputLine(source: string, line: string): void {
    this.send({ event: "output", source, line });
  }

  cleanup(description: string, outcome: "done" | "failed" | "skipped" | "left", detail?: string): void {
    this.send(detail === undefined ? { event: "cleanup", description, outcome } : { event: "cleanup", description, outcome, detail });
  }
}
