/** Corrupt structures met while reading, kept for the report; capped so a wrecked image cannot exhaust memory. */
export class ProblemLog {
  readonly problems: string[] = [];
  private dropped = 0;

  constructor(private readonly limit = 1000) {}

  note(problem: string): void {
    if (this.problems.length < this.limit) {
      this.problems.push(problem);
      return;
    }
    this.dropped++;
    const summary = `${this.dropped} more problems not listed`;
    if (this.problems.length === this.limit) this.problems.push(summary);
    else this.problems[this.limit] = summary;
  }
}

/** A sink that forgets: for structures that are expected to be stale, like a deleted inode's old extent tree. */
export const ignoreProblems = { note(): void { /* stale data is not a problem */ } } as Pick<ProblemLog, "note">;

export type ProblemSink = Pick<ProblemLog, "note">;
