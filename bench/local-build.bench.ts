/**
 * `npm run bench`: the wall time of a cached local build, next to the same work done by the
 * bare tools (tar extract, chroot shell, mke2fs -d) in the same run, as a ratio.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { basePaths } from "../src/builders/local/base-cache.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const cacheDir = process.env.KILN_CACHE_DIR ?? "/var/tmp/kiln-test-cache";
const template = join(repo, "bench/bench.yaml");
const rounds = Number(process.env.KILN_BENCH_ROUNDS ?? 3);
const scratch = mkdtempSync(join(tmpdir(), "kiln-bench-"));

/** Builds once and returns the cached base the build used, from its manifest. */
function warmUp(): string {
  kilnBuild(false);
  const out = join(scratch, "output");
  const manifest = JSON.parse(readFileSync(join(out, readdirSync(out)[0] ?? "", "manifest.json"), "utf8")) as { inputs: { base: { key: string } } };
  rmSync(out, { recursive: true, force: true });
  return basePaths(cacheDir, manifest.inputs.base.key).tarball;
}

function kilnBuild(removeOutput = true): number {
  const started = process.hrtime.bigint();
  const run = spawnSync(process.execPath, [join(repo, "bin/kiln.js"), "build", template, "--cache-dir", cacheDir,
    "--work-dir", join(scratch, "work"), "--output-dir", join(scratch, "output")], { encoding: "utf8" });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (run.status !== 0) throw new Error(`kiln build failed:\n${run.stdout}\n${run.stderr}`);
  if (removeOutput) rmSync(join(scratch, "output"), { recursive: true, force: true });
  return seconds;
}

function bareTools(baseTarball: string): number {
  const started = process.hrtime.bigint();
  const root = join(scratch, "bare-root");
  const image = join(scratch, "bare.raw");
  execFileSync("mkdir", ["-p", root]);
  execFileSync("tar", ["--extract", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-f", baseTarball, "-C", root]);
  execFileSync("chroot", [root, "/bin/sh", "-ec", "useradd --create-home --shell /bin/bash admin; echo 'Built by kiln' > /etc/motd"]);
  execFileSync("mke2fs", ["-q", "-t", "ext4", "-d", root, image, "400M"]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  rmSync(root, { recursive: true, force: true });
  rmSync(image, { force: true });
  return seconds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

try {
  const baseTarball = warmUp(); // on a new machine this also builds the base into the cache
  const kiln: number[] = [];
  const bare: number[] = [];
  // Each round starts with the previous round's writes flushed, so neither side pays for the other's.
  for (let i = 0; i < rounds; i++) {
    execFileSync("sync");
    kiln.push(kilnBuild());
    execFileSync("sync");
    bare.push(bareTools(baseTarball));
  }
  const k = median(kiln);
  const b = median(bare);
  console.log(`cached local build (kiln build, ${rounds} rounds): median ${k.toFixed(2)} s  [${kiln.map((s) => s.toFixed(2)).join(", ")}]`);
  console.log(`bare tools (tar + chroot sh + mke2fs -d):        median ${b.toFixed(2)} s  [${bare.map((s) => s.toFixed(2)).join(", ")}]`);
  console.log(`ratio kiln / bare tools: ${(k / b).toFixed(2)}`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
