import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RecordingReporter } from "../../test/helpers/recording-reporter.js";
import { CleanupStack } from "./cleanup-stack.js";

const never = new AbortController().signal;

describe("CleanupStack", () => {
  it("undoes in reverse order and keeps artifacts when the build succeeded", async () => {
    const stack = new CleanupStack();
    const order: string[] = [];
    stack.defer("first", async () => { order.push("first"); });
    stack.deferOnFailure("artifact", async () => { order.push("artifact"); });
    stack.defer("second", async () => { order.push("second"); });
    const failures = await stack.unwind({ succeeded: true, report: new RecordingReporter(), signal: never, timeoutMs: 1000 });
    assert.deepEqual(order, ["second", "first"]);
    assert.deepEqual(failures, []);
  });

  it("removes artifacts too when the build failed", async () => {
    const stack = new CleanupStack();
    const order: string[] = [];
    stack.defer("work", async () => { order.push("work"); });
    stack.deferOnFailure("artifact", async () => { order.push("artifact"); });
    await stack.unwind({ succeeded: false, report: new RecordingReporter(), signal: never, timeoutMs: 1000 });
    assert.deepEqual(order, ["artifact", "work"]);
  });

  it("collects a failing undo and goes on with the rest", async () => {
    const stack = new CleanupStack();
    const report = new RecordingReporter();
    let ranFirst = false;
    stack.defer("delete thing one", async () => { ranFirst = true; });
    stack.defer("delete thing two", async () => { throw new Error("permission denied"); });
    const failures = await stack.unwind({ succeeded: false, report, signal: never, timeoutMs: 1000 });
    assert.equal(ranFirst, true);
    assert.equal(failures.length, 1);
    assert.equal(failures[0]?.description, "delete thing two");
    assert.ok(report.lines.some((l) => /failed delete thing two: permission denied/.test(l)), report.lines.join("\n"));
  });

  it("gives each undo its own deadline", async () => {
    const stack = new CleanupStack();
    let sawAbort = false;
    stack.defer("slow", (signal) => new Promise((resolve) => signal.addEventListener("abort", () => { sawAbort = true; resolve(); })));
    const failures = await stack.unwind({ succeeded: false, report: new RecordingReporter(), signal: never, timeoutMs: 50 });
    assert.equal(failures.length, 1);
    assert.match(String(failures[0]?.error), /did not finish within 0.05s/);
    assert.equal(sawAbort, true, "the undo's signal was aborted at the deadline");
  });

  it("lists what is left when cleanup itself is interrupted", async () => {
    const stack = new CleanupStack();
    const report = new RecordingReporter();
    const stop = new AbortController();
    stack.defer("remove work directory", async () => undefined);
    stack.defer("delete volume", async () => { stop.abort(); });
    const failures = await stack.unwind({ succeeded: false, report, signal: stop.signal, timeoutMs: 1000 });
    assert.deepEqual(failures.map((f) => f.description), ["remove work directory"]);
    assert.ok(report.lines.some((l) => /left remove work directory: cleanup was interrupted/.test(l)));
  });

  it("lets a step undo a resource early, once", async () => {
    const stack = new CleanupStack();
    let runs = 0;
    const release = stack.defer("policy-rc.d", async () => { runs += 1; });
    await release(never);
    await release(never);
    await stack.unwind({ succeeded: true, report: new RecordingReporter(), signal: never, timeoutMs: 1000 });
    assert.equal(runs, 1);
    assert.deepEqual(stack.pending(false), []);
  });
});
