import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { KilnError } from "../../../errors.js";
import type { Step } from "../../../pipeline/step.js";
import { diskOf } from "../../../template/schema.js";
import { testImage, type VmTestResult } from "../../../vm-test/run-test.js";
import type { LocalFacts } from "../plan-facts.js";
import type { LocalBuildRequest } from "../request.js";
import type { DiskImage, PartialOutput } from "./filesystem-image.js";

export interface TestSummary {
  /** `test.json` beside the manifest; absent when the template has no `test:`. */
  reportPath?: string;
  passed?: boolean;
}

/**
 * The template's `test:`: boots the raw disk in QEMU as `kiln test` does, before the output is
 * published. A failed check fails the build; the console logs are kept beside where the output
 * would have gone (`<output>.test-failed/`), since the partial output is removed.
 */
export const testDisk: Step<LocalBuildRequest & { disk: DiskImage; partialOutput: PartialOutput }, { test: TestSummary }, LocalFacts> = {
  name: "test image",
  plan: ({ loaded, builder }) => {
    const test = loaded.template.test;
    if (test === undefined) return { calls: [], creates: [], note: "no test: in the template" };
    const firmware = test.firmware ?? diskOf(builder).boot;
    return { calls: [], creates: [{ type: "test report", name: "test.json and console logs" }], note: `boots disk.raw in QEMU by ${firmware.join(" and ")}, ${test.boots} boot${test.boots === 1 ? "" : "s"} each; a failed check fails the build` };
  },
  run: async (ctx, { loaded, builder, disk, partialOutput }) => {
    const test = loaded.template.test;
    if (test === undefined) return { output: { test: {} }, summary: "no test: in the template" };
    const logDirectory = join(partialOutput.directory, "test");
    await mkdir(logDirectory, { mode: 0o755 });
    const harden = loaded.template.harden;
    const result = await testImage({
      image: disk.path,
      firmware: test.firmware ?? diskOf(builder).boot,
      user: test.user ?? (harden === false ? undefined : harden.default_user) ?? "root",
      commands: test.commands,
      logDirectory,
      bootTimeoutSeconds: test.timeout_seconds,
      keep: false,
      boots: test.boots,
      signal: ctx.signal,
      report: ctx.report,
    });
    const reportPath = join(partialOutput.directory, "test.json");
    await writeFile(reportPath, `${JSON.stringify(reportOf(result), null, 2)}\n`);
    if (!result.passed) {
      const kept = `${partialOutput.destination}.test-failed`;
      await rename(logDirectory, kept).catch(() => undefined);
      const failed = result.boots.flatMap((b) => b.checks.filter((c) => !c.passed).map((c) => `${b.firmware} boot ${b.boot}: ${c.name}: ${c.detail}`));
      throw new KilnError("KILN_TEST_FAILED", `the image failed its test: ${failed.join("; ")}`, {
        hint: `the console logs are in ${kept}; boot it yourself with kiln test --keep on the disk of a build without test:`, exitCode: 1,
      });
    }
    const boots = result.boots.map((b) => `${b.firmware} ${b.boot}: SSH in ${b.secondsToSsh?.toFixed(1) ?? "?"}s`);
    return { output: { test: { reportPath, passed: true } }, summary: `passed (${boots.join(", ")})` };
  },
};

/** test.json: the result without this machine's temporary paths. */
function reportOf(result: VmTestResult): unknown {
  return {
    passed: result.passed,
    format: result.format,
    boots: result.boots.map((b) => ({ ...b, consoleLog: `test/${b.consoleLog.slice(b.consoleLog.lastIndexOf("/") + 1)}` })),
  };
}
