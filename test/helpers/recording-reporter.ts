import { TextReporter } from "../../src/report/reporter.js";

/** A text reporter that keeps its lines, for assertions. */
export class RecordingReporter extends TextReporter {
  readonly lines: string[];

  constructor() {
    const lines: string[] = [];
    super((line) => lines.push(line));
    this.lines = lines;
  }
}
