import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classify, runPool } from "./block-pool.js";
import { RateBudget } from "./rate-budget.js";

const throttled = (): Error => Object.assign(new Error("slow down"), { name: "RequestThrottledException", $metadata: { httpStatusCode: 400 } });
const internal = (): Error => Object.assign(new Error("oops"), { name: "InternalServerException", $metadata: { httpStatusCode: 500 } });
const invalid = (): Error => Object.assign(new Error("bad checksum"), { name: "ValidationException", $metadata: { httpStatusCode: 400 } });

describe("block pool", () => {
  it("tells throttling from transient from fatal answers", () => {
    assert.equal(classify(throttled()), "throttled");
    assert.equal(classify(internal()), "transient");
    assert.equal(classify(Object.assign(new Error("reset"), { code: "ECONNRESET" })), "transient");
    assert.equal(classify(invalid()), "fatal");
    assert.equal(classify(Object.assign(new Error("denied"), { name: "AccessDeniedException", $metadata: { httpStatusCode: 403 } })), "fatal");
  });

  it("waits out throttling: every item done, the budget narrowed, nothing failed", async () => {
    const budget = new RateBudget(16, 16);
    let throttles = 20;
    const done = new Set<number>();
    await runPool(Array.from({ length: 40 }, (_, i) => i), async (i) => {
      if (throttles-- > 0) throw throttled();
      await Promise.resolve();
      done.add(i);
    }, { budget, signal: new AbortController().signal, doing: (i) => `block ${i}` });
    assert.equal(done.size, 40);
    assert.equal(budget.throttled, 20);
    assert.ok(budget.limit < 16, `limit ${budget.limit}`);
  });

  it("retries a transient failure, and gives up after its attempts with the call named", async () => {
    const budget = new RateBudget(4);
    const tries = new Map<number, number>();
    await runPool([1, 2], async (i) => {
      tries.set(i, (tries.get(i) ?? 0) + 1);
      if ((tries.get(i) ?? 0) < 3) throw internal();
    }, { budget, signal: new AbortController().signal, doing: (i) => `block ${i}`, attempts: 5 });
    assert.deepEqual([...tries.values()], [3, 3]);
    await assert.rejects(runPool([9], () => Promise.reject(internal()), { budget, signal: new AbortController().signal, doing: (i) => `putting block ${i}`, attempts: 2 }),
      /putting block 9: InternalServerException: oops/);
  });

  it("stops at the first fatal answer, with no item started after it", async () => {
    const budget = new RateBudget(1, 1);
    const started: number[] = [];
    await assert.rejects(runPool([0, 1, 2, 3], async (i) => {
      started.push(i);
      if (i === 1) throw invalid();
      await Promise.resolve();
    }, { budget, signal: new AbortController().signal, doing: (i) => `putting block ${i}` }), /putting block 1: ValidationException: bad checksum/);
    assert.deepEqual(started, [0, 1]);
  });
});
