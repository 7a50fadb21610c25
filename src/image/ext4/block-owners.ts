import type { ProblemSink } from "./problem-log.js";
import { lastAtOrBefore } from "./sorted-search.js";

/** Collects runs of blocks with an owner id, in any order, into growable typed arrays. */
export class BlockOwnerRuns {
  private starts = new Float64Array(1024);
  private counts = new Float64Array(1024);
  private owners = new Int32Array(1024);
  private length = 0;

  add(start: number, count: number, owner: number): void {
    if (count <= 0) return;
    if (this.length === this.starts.length) this.grow();
    this.starts[this.length] = start;
    this.counts[this.length] = count;
    this.owners[this.length] = owner;
    this.length++;
  }

  /** Sorts and merges into a lookup index; where two owners claim a block the first added keeps it. */
  index(problems: ProblemSink, ownerName: (owner: number) => string): BlockOwnerIndex {
    const order = new Uint32Array(this.length);
    for (let i = 0; i < this.length; i++) order[i] = i;
    order.sort((a, b) => (this.starts[a]! - this.starts[b]!) || (a - b));
    const starts = new Float64Array(this.length);
    const ends = new Float64Array(this.length);
    const owners = new Int32Array(this.length);
    let size = 0;
    let reported = 0;
    for (const i of order) {
      let start = this.starts[i]!;
      const end = start + this.counts[i]!;
      const owner = this.owners[i]!;
      const lastEnd = size > 0 ? ends[size - 1]! : -1;
      if (start < lastEnd) {
        if (reported++ < 20) problems.note(`blocks ${start}…${Math.min(end, lastEnd) - 1} are claimed by both ${ownerName(owners[size - 1]!)} and ${ownerName(owner)}`);
        if (end <= lastEnd) continue;
        start = lastEnd;
      }
      if (size > 0 && start === lastEnd && owners[size - 1] === owner) {
        ends[size - 1] = end;
        continue;
      }
      starts[size] = start;
      ends[size] = end;
      owners[size] = owner;
      size++;
    }
    return new BlockOwnerIndex(starts.slice(0, size), ends.slice(0, size), owners.slice(0, size));
  }

  private grow(): void {
    const capacity = this.starts.length * 2;
    const starts = new Float64Array(capacity);
    const counts = new Float64Array(capacity);
    const owners = new Int32Array(capacity);
    starts.set(this.starts);
    counts.set(this.counts);
    owners.set(this.owners);
    this.starts = starts;
    this.counts = counts;
    this.owners = owners;
  }
}

/** Non-overlapping runs sorted by first block; lookups by binary search. */
export class BlockOwnerIndex {
  constructor(
    private readonly starts: Float64Array,
    private readonly ends: Float64Array,
    private readonly owners: Int32Array,
  ) {}

  get runCount(): number {
    return this.starts.length;
  }

  /** The owner id of `block`, or -1. */
  find(block: number): number {
    const i = lastAtOrBefore(this.starts, block);
    return i >= 0 && block < this.ends[i]! ? this.owners[i]! : -1;
  }

  /** Splits blocks `start…+count` into pieces with one owner each (-1 for none), in order. */
  *segments(start: number, count: number): Generator<{ start: number; count: number; owner: number }> {
    const end = start + count;
    let at = start;
    let i = lastAtOrBefore(this.starts, start);
    if (i < 0 || this.ends[i]! <= start) i++;
    while (at < end) {
      const runStart = i < this.starts.length ? this.starts[i]! : Infinity;
      if (runStart > at) {
        const until = Math.min(runStart, end);
        yield { start: at, count: until - at, owner: -1 };
        at = until;
        continue;
      }
      const until = Math.min(this.ends[i]!, end);
      yield { start: at, count: until - at, owner: this.owners[i]! };
      at = until;
      i++;
    }
  }
}
