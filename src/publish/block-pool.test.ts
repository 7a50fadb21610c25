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

describe("rate budget", () => {
  it("takes a burst of throttling answers from calls in flight together as one slowdown", async () => {
    const budget = new RateBudget(32, 32);
    const signal = new AbortController().signal;
    for (let i = 0; i < 32; i++) await budget.acquire(signal);
    const started = Date.now();
    for (let i = 0; i < 32; i++) budget.release("throttled");
    assert.equal(budget.throttled, 32);
    assert.equal(budget.limit, 16, "halved once, not 32 times");
    await budget.acquire(signal);
    assert.ok(Date.now() - started < 1000, `paused ${Date.now() - started} ms`);
  });

  it("grows back by about one call per window of successes, up to its most", async () => {
    const budget = new RateBudget(8, 2);
    const signal = new AbortController().signal;
    for (let i = 0; i < 100; i++) {
      await budget.acquire(signal);
      budget.release("ok");
    }
    assert.equal(budget.limit, 8);
  });
});

describe("block pool: EBS direct's answers under load", () => {
  it("waits out ConcurrentLimitExceeded and retries the ValidationExceptions AWS gives under load", () => {
    assert.equal(classify(Object.assign(new Error("too many"), { name: "ConcurrentLimitExceededException", $metadata: { httpStatusCode: 400 } })), "throttled");
    assert.equal(classify(Object.assign(new Error("conflict"), { name: "ValidationException", Reason: "CONFLICTING_BLOCK_UPDATE", $metadata: { httpStatusCode: 400 } })), "transient");
    assert.equal(classify(Object.assign(new Error("Failed to read block data"), { name: "ValidationException", $metadata: { httpStatusCode: 400 } })), "transient");
    assert.equal(classify(Object.assign(new Error("checksum"), { name: "ValidationException", Reason: "INVALID_PARAMETER_VALUE", $metadata: { httpStatusCode: 400 } })), "fatal");
  });
});
