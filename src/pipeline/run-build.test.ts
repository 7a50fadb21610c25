import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RecordingReporter } from "../../test/helpers/recording-reporter.js";
import { KilnError } from "../errors.js";
import { Pipeline } from "./pipeline.js";
import { BuildError, runBuild, type RunBuildOptions } from "./run-build.js";
import type { Step } from "./step.js";

function options(overrides: Partial<RunBuildOptions> = {}): RunBuildOptions {
  return { report: new RecordingReporter(), signal: new AbortController().signal, cleanupSignal: new AbortController().signal, onError: "cleanup", cleanupTimeoutMs: 1000, ...overrides };
}

const undone: string[] = [];
const noPlan = () => ({ calls: [], creates: [] });
const createVolume: Step<{ size: number }, { volumeId: string }> = {
  name: "create volume", plan: noPlan,
  run: async (ctx, { size }) => {
    const volumeId = `vol-${size}`;
    ctx.cleanup.defer(`delete volume ${volumeId}`, async () => { undone.push(volumeId); });
    return { output: { volumeId }, summary: volumeId };
  },
};
const failingSnapshot: Step<{ volumeId: string }, { snapshotId: string }> = {
  name: "snapshot", plan: noPlan,
  run: async (ctx) => {
    ctx.cleanup.defer("delete the thing that breaks", async () => { throw new Error("undo broke"); });
    throw new KilnError("KILN_TEST", "snapshot failed", { hint: "try again" });
  },
};

describe("runBuild", () => {
  it("passes each step's products to the next and reports progress", async () => {
    const report = new RecordingReporter();
    const readVolume: Step<{ volumeId: string }, { described: string }> = { name: "describe", plan: noPlan, run: async (_c, { volumeId }) => ({ output: { described: `${volumeId}!` } }) };
    const state = await runBuild(Pipeline.start<{ size: number }>().then(createVolume).then(readVolume), { size: 8 }, options({ report }));
    assert.equal(state.described, "vol-8!");
    assert.match(report.lines[0] ?? "", /^==> \[\d+\.\ds\] 1\/2 create volume$/);
    assert.ok(report.lines.some((l) => /^ {4}\[\d+\.\ds\] create volume: vol-8$/.test(l)), report.lines.join("\n"));
  });

  it("reports a failing undo beside the original error, not over it", async () => {
    undone.length = 0;
    const pipeline = Pipeline.start<{ size: number }>().then(createVolume).then(failingSnapshot);
    const error = await runBuild(pipeline, { size: 1 }, options()).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof BuildError);
    assert.equal(error.message, "snapshot failed");
    assert.equal(error.hint, "try again");
    assert.deepEqual(error.cleanupFailures.map((f) => f.description), ["delete the thing that breaks"]);
    assert.deepEqual(undone, ["vol-1"], "the other undo still ran");
  });

  it("keeps what is marked for debugging with --on-error abort, lists it, and undoes the rest", async () => {
    undone.length = 0;
    const workDirectory: Step<object, object> = {
      name: "work directory", plan: noPlan,
      run: async (ctx) => {
        ctx.cleanup.defer("remove work directory /w", async () => { undone.push("/w"); }, { keepOnAbort: true });
        return { output: {} };
      },
    };
    const pipeline = Pipeline.start<{ size: number }>().then(workDirectory).then(createVolume).then(failingSnapshot);
    const error = await runBuild(pipeline, { size: 2 }, options({ onError: "abort" })).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof BuildError);
    assert.deepEqual(error.leftBehind, ["remove work directory /w"]);
    assert.deepEqual(undone, ["vol-2"]);
  });

  it("turns a cancelled build into exit code 130 and still cleans up", async () => {
    undone.length = 0;
    const cancel = new AbortController();
    const waitForCancel: Step<object, object> = {
      name: "wait", plan: noPlan,
      run: async () => { cancel.abort(); throw new Error("interrupted system call"); },
    };
    const pipeline = Pipeline.start<{ size: number }>().then(createVolume).then(waitForCancel);
    const error = await runBuild(pipeline, { size: 3 }, options({ signal: cancel.signal, onError: "abort" })).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof BuildError);
    assert.equal(error.exitCode, 130);
    assert.deepEqual(undone, ["vol-3"], "a cancelled build is cleaned up even with --on-error abort");
  });

  it("ends a step that does not heed the cancel: cleanup runs a grace period after Ctrl-C, whatever the step waits for", async () => {
    undone.length = 0;
    const report = new RecordingReporter();
    const cancel = new AbortController();
    const stuck: Step<object, object> = {
      name: "write manifest", plan: noPlan,
      // Like a read of a fifo: nothing the signal can reach.
      run: () => { setTimeout(() => cancel.abort(), 20); return new Promise(() => undefined); },
    };
    const started = Date.now();
    const error = await runBuild(Pipeline.start<{ size: number }>().then(createVolume).then(stuck), { size: 4 }, options({ report, signal: cancel.signal, stopGraceMs: 300 }))
      .then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof BuildError);
    assert.equal(error.exitCode, 130);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    assert.deepEqual(undone, ["vol-4"], "cleanup ran");
    assert.ok(report.lines.some((l) => /write manifest did not stop within 0\.3s of the cancel; cleaning up without it/.test(l)), report.lines.join("\n"));
  });
});

describe("system errors in a step", () => {
  it("become one clear error naming the step, with a hint", async () => {
    const full: Step<object, object> = {
      name: "write filesystem image", plan: noPlan,
      run: async () => { throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" }); },
    };
    const error = await runBuild(Pipeline.start<object>().then(full), {}, options()).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof BuildError);
    assert.equal(error.code, "KILN_SYSTEM");
    assert.equal(error.message, "write filesystem image: ENOSPC: no space left on device, write");
    assert.match(error.hint ?? "", /free some disk space/);
  });
});
