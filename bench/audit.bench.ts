/**
 * `npm run bench`, second part: the throughput of `kiln audit` on raw disk images of at least
 * 1 GiB, next to ripgrep searching the same file for exactly the same patterns (`rg -a -c`),
 * in the same run, with the file in the page cache for both. kiln also maps every hit to its
 * file or to unallocated space, walks the filesystem, applies the file rules and looks inside
 * compressed files; ripgrep only counts lines. kiln skips the holes of a sparse image (they
 * are zeros); the fully allocated copy of the dense image shows the case with no holes at all.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditImage } from "../src/audit/audit-image.js";
import { secretPatterns } from "../src/audit/candidates/secret-patterns.js";

const cacheDir = process.env.KILN_CACHE_DIR ?? "/var/tmp/kiln-test-cache";
const rounds = Number(process.env.KILN_BENCH_ROUNDS ?? 3);
const scratch = mkdtempSync(join(tmpdir(), "kiln-audit-bench-"));

/** A cached Debian base tarball; `npm run bench`'s build part has made one by now. */
function baseTarball(): string {
  const bases = join(cacheDir, "bases");
  const tarball = readdirSync(bases).find((f) => f.endsWith(".tar"));
  if (tarball === undefined) throw new Error(`no cached base in ${bases}: run the build benchmark (or npm test) first`);
  return join(bases, tarball);
}

/**
 * Dense: a Debian system plus application payload (three uncompressed archives of binaries and
 * libraries, as a data or container store holds) fill most of 1.4 GiB.
 */
function denseImage(tarball: string): string {
  const root = join(scratch, "dense-root");
  mkdirSync(root);
  execFileSync("tar", ["-x", "--numeric-owner", "-f", tarball, "-C", root]);
  mkdirSync(join(root, "srv/data"), { recursive: true });
  for (const copy of ["a", "b", "c"]) execFileSync("tar", ["-C", root, "-cf", join(root, "srv/data", `${copy}.tar`), "usr"]);
  const image = join(scratch, "dense.raw");
  execFileSync("mke2fs", ["-q", "-t", "ext4", "-d", root, image, "1400M"]);
  rmSync(root, { recursive: true, force: true });
  return image;
}

/** Sparse: one Debian tree in a 2 GiB filesystem, as a freshly built image mostly is. */
function sparseImage(tarball: string): string {
  const root = join(scratch, "sparse-root");
  mkdirSync(root);
  execFileSync("tar", ["-x", "--numeric-owner", "-f", tarball, "-C", root]);
  writeFileSync(join(root, "etc/motd"), "Built by kiln\n");
  const image = join(scratch, "sparse.raw");
  execFileSync("mke2fs", ["-q", "-t", "ext4", "-d", root, image, "2G"]);
  rmSync(root, { recursive: true, force: true });
  return image;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function timeKiln(image: string): Promise<number> {
  const started = process.hrtime.bigint();
  await auditImage(image, { failOn: "critical" });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function timeRipgrep(image: string, patternFile: string): number {
  const started = process.hrtime.bigint();
  const run = spawnSync("rg", ["-a", "-c", "-f", patternFile, image], { encoding: "utf8" });
  if (run.error !== undefined || (run.status !== 0 && run.status !== 1)) throw new Error(`rg failed (apt-get install ripgrep): ${run.error?.message ?? run.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

try {
  const patternFile = join(scratch, "patterns.txt");
  writeFileSync(patternFile, `${secretPatterns.map((p) => p.source).join("\n")}\n`);
  const tarball = baseTarball();
  const dense = denseImage(tarball);
  const allocated = join(scratch, "allocated.raw");
  execFileSync("cp", ["--sparse=never", dense, allocated]);
  for (const [name, image] of [["dense", dense], ["dense, fully allocated (no holes)", allocated], ["sparse", sparseImage(tarball)]] as const) {
    const bytes = statSync(image).size;
    execFileSync("cat", [image], { stdio: ["ignore", "ignore", "ignore"] }); // into the page cache for both
    const kiln: number[] = [];
    const rg: number[] = [];
    for (let i = 0; i < rounds; i++) {
      kiln.push(await timeKiln(image));
      rg.push(timeRipgrep(image, patternFile));
    }
    const mbps = (s: number): string => `${(bytes / s / 1e6).toFixed(0)} MB/s`;
    const [k, r] = [median(kiln), median(rg)];
    console.log(`audit, ${name} ${(bytes / 2 ** 30).toFixed(2)} GiB image (${rounds} rounds, medians):`);
    console.log(`  kiln audit  ${k.toFixed(2)} s  ${mbps(k)}  [${kiln.map((s) => s.toFixed(2)).join(", ")}]`);
    console.log(`  rg -a -c    ${r.toFixed(2)} s  ${mbps(r)}  [${rg.map((s) => s.toFixed(2)).join(", ")}]`);
    console.log(`  throughput ratio kiln / ripgrep: ${(r / k).toFixed(2)}`);
    rmSync(image, { force: true });
  }
  console.log(`kiln peak resident memory (this process, all rounds): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
