import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KilnError } from "../errors.js";
import { findTool, requireTools } from "./host-tools.js";

describe("requireTools", () => {
  it("finds tools in sbin directories even when PATH lacks them", async () => {
    assert.equal(await findTool("mke2fs", "/nonexistent"), "/usr/sbin/mke2fs");
  });

  it("names every missing tool and the packages to install", async () => {
    await assert.rejects(
      requireTools([
        { command: "sh", debianPackage: "dash", purpose: "runs scripts" },
        { command: "kiln-no-such-tool", debianPackage: "kiln-pkg-a", purpose: "does a" },
        { command: "kiln-other-missing", debianPackage: "kiln-pkg-b", purpose: "does b" },
      ]),
      (error: unknown) => {
        assert.ok(error instanceof KilnError);
        assert.equal(error.code, "KILN_TOOL_MISSING");
        assert.equal(error.message, "missing on this machine: kiln-no-such-tool (does a; package kiln-pkg-a), kiln-other-missing (does b; package kiln-pkg-b)");
        assert.equal(error.hint, "install with: apt-get install -y kiln-pkg-a kiln-pkg-b");
        return true;
      },
    );
  });
});
