import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { absolutePath, asTreeRoot, foreignTreeOwner } from "./tree-owner.js";

describe("asTreeRoot", () => {
  it("drops relative PATH entries, which would resolve in the tree it runs in", () => {
    assert.equal(absolutePath(".:/usr/bin::bin:/bin:"), "/usr/bin:/bin");
    assert.equal(absolutePath(""), "/usr/sbin:/usr/bin:/sbin:/bin");
    assert.equal(absolutePath(undefined), "/usr/sbin:/usr/bin:/sbin:/bin");
  });

  it("starts from an absolute program, rootless or not", () => {
    assert.equal(asTreeRoot(undefined, ["mke2fs"])[0], "/usr/bin/env");
    const argv = asTreeRoot({ base: 0x7ffe0000, count: 0x10000, idmap: "/w/idmap" }, ["tar"]);
    assert.equal(argv[0], "/usr/bin/env");
    assert.match(argv[1] ?? "", /^PATH=\/w\/idmap:\//);
    assert.doesNotMatch(argv[1] ?? "", /(^PATH=|:)(\.|)(:|$)/);
  });

  it("dies with kiln: what runs as the tree's root does not outlive a killed kiln", { skip: process.getuid?.() !== 0 && "maps the foreign range as root" }, async () => {
    const work = await mkdtemp(join(tmpdir(), "kiln-tree-owner-"));
    try {
      for (const owner of [undefined, await foreignTreeOwner(work)]) {
        const token = String(41_000 + Math.floor(Math.random() * 900));
        const argv = asTreeRoot(owner, ["sleep", token]);
        // A stand-in for kiln: a process that starts the command and is then SIGKILLed.
        const kiln = spawn(process.execPath, ["-e", `require("node:child_process").spawn(${JSON.stringify(argv[0])}, ${JSON.stringify(argv.slice(1))}, { stdio: "ignore" }); setInterval(() => {}, 1000)`], { stdio: "ignore" });
        const alive = (): boolean => spawnSync("pgrep", ["-f", `^sleep ${token}$`]).status === 0;
        for (let i = 0; i < 50 && !alive(); i++) await new Promise((r) => setTimeout(r, 100));
        assert.ok(alive(), "the command started");
        kiln.kill("SIGKILL");
        for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
        assert.ok(!alive(), `sleep ${token} outlived kiln (${owner === undefined ? "rootless" : "foreign range"})`);
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
