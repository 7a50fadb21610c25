import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanScript, globWord } from "./clean-list.js";

/** What sh makes of `word`: the words it expands to, one per line. */
function expand(word: string, cwd: string): string[] {
  return execFileSync("/bin/sh", ["-c", `for w in ${word}; do printf '%s\\n' "$w"; done`], { cwd, encoding: "utf8", env: { PATH: "/usr/bin:/bin", HOME: cwd } }).split("\n").filter((l) => l !== "");
}

describe("clean.paths as sh words", () => {
  it("expands globs and nothing else: no command substitution, variable, tilde or line break", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-clean-"));
    try {
      await mkdir(join(dir, "logs"));
      for (const name of ["a.log", "b.log", "c.txt", "it's.log"]) await writeFile(join(dir, "logs", name), "");
      assert.deepEqual(expand(globWord(`${dir}/logs/*.log`), dir), [`${dir}/logs/a.log`, `${dir}/logs/b.log`, `${dir}/logs/it's.log`]);
      assert.deepEqual(expand(globWord(`${dir}/logs/[!ab]*`), dir), [`${dir}/logs/c.txt`, `${dir}/logs/it's.log`]);
      assert.deepEqual(expand(globWord(`${dir}/logs/[a-b].log`), dir), [`${dir}/logs/a.log`, `${dir}/logs/b.log`]);
      const hostile = [`${dir}/$(touch ${dir}/pwned)*`, `${dir}/\`touch ${dir}/pwned\`*`, `${dir}/$HOME*`, `${dir}/x*;touch ${dir}/pwned`, `${dir}/a*\ntouch ${dir}/pwned`, `~/*`];
      for (const path of hostile) {
        expand(globWord(path), dir);
        assert.deepEqual(await readdir(dir), ["logs"], `${JSON.stringify(path)} ran code`);
      }
      // Unmatched, each stays the literal pattern: `rm` is handed exactly what the template said.
      assert.deepEqual(expand(globWord(`${dir}/$HOME*`), dir), [`${dir}/$HOME*`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("puts the template's paths into the clean script as those words", () => {
    const script = cleanScript(["/opt/app/*.log", "/srv/$(reboot)"]);
    assert.match(script, /^remove '\/opt\/app\/'\*'\.log' '\/srv\/\$\(reboot\)'$/m);
  });
});
