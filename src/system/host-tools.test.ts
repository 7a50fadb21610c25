import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

describe("requireTools: a tool too old for what kiln asks of it", () => {
  const unshare = { command: "unshare", debianPackage: "util-linux", purpose: "isolates provisioners", option: { name: "--map-users", since: "util-linux 2.38" } };

  it("passes this machine's unshare, which maps id ranges", async () => {
    await requireTools([unshare]);
  });

  it("refuses util-linux 2.37's unshare (Ubuntu 22.04), which has no --map-users, naming the version needed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-old-unshare-"));
    // unshare 2.37.2's own --help, cut to its mapping options: --map-user and --map-root-user only.
    await writeFile(join(dir, "unshare"), "#!/bin/sh\ncat <<'END'\n\nUsage:\n unshare [options] [<program> [<argument>...]]\n\nOptions:\n -U, --user[=<file>]       unshare user namespace\n     --map-user=<uid>|<name>  map current user to uid (implies --user)\n -r, --map-root-user       map current user to root (implies --user)\n\n -V, --version  display version\n\nunshare from util-linux 2.37.2\nEND\n", { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path ?? ""}`;
    try {
      await assert.rejects(requireTools([unshare]), (error: unknown) => {
        assert.ok(error instanceof KilnError);
        assert.equal(error.code, "KILN_TOOL_TOO_OLD");
        assert.equal(error.message, `too old on this machine: ${dir}/unshare has no --map-users (isolates provisioners; util-linux 2.38 or later)`);
        assert.match(error.hint ?? "", /util-linux/);
        return true;
      });
    } finally {
      process.env.PATH = path;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
