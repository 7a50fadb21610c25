import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RecordingReporter } from "../../test/helpers/recording-reporter.js";
import { CleanupStack } from "../pipeline/cleanup-stack.js";
import type { Communicator } from "../communicator/communicator.js";
import { runShellLocal } from "./shell-local.js";

describe("shell-local", () => {
  it("never puts its script, or a secret in it, on a process command line (readable by every local user)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-shell-local-test-"));
    try {
      const report = new RecordingReporter();
      await runShellLocal({
        type: "shell-local",
        // Every process the script starts, and the shell itself, shows its argv here.
        inline: ["token=s3cr3t-token-value", 'tr "\\0" " " < /proc/$$/cmdline > cmdline', 'printf "%s" "$KILN_TEST_VALUE" > env-value'],
        env: { KILN_TEST_VALUE: "from env" },
      } as Parameters<typeof runShellLocal>[0], {
        ctx: { signal: new AbortController().signal, report, cleanup: new CleanupStack() },
        communicator: {} as Communicator,
        templateDirectory: dir,
        label: "provisioner 1 (shell-local)",
      });
      const cmdline = await readFile(join(dir, "cmdline"), "utf8");
      assert.match(cmdline, /^\/bin\/sh -e \S+kiln-shell-local-\S+\/script-0\.sh $/);
      assert.doesNotMatch(cmdline, /s3cr3t/);
      assert.equal(await readFile(join(dir, "env-value"), "utf8"), "from env");
      // The private script directory is gone afterwards.
      assert.deepEqual((await readdir(tmpdir())).filter((n) => n.startsWith("kiln-shell-local-") && !n.startsWith("kiln-shell-local-test-")), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
