import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { access, chmod, chown, copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { kilnBin, repoRoot, runKiln, startKiln } from "./helpers/kiln-process.js";

/** Shared with the other whole-process suites, so the real mmdebstrap base is built once. */
const cacheDir = process.env.KILN_TEST_CACHE_DIR ?? "/var/tmp/kiln-test-cache";
const fixture = join(repoRoot, "test/fixtures/local/base.yaml");
const nobody = 65534;
const scratch = mkdtempSync(join(tmpdir(), "kiln-confine-"));
after(() => rm(scratch, { recursive: true, force: true }));

/** The shared fixture with only `provisioners` (YAML lines) in place of its own. */
async function template(name: string, provisioners: string): Promise<string> {
  const text = (await readFile(fixture, "utf8")).replace(/^provisioners:[\s\S]*$/m, `provisioners:\n${provisioners}`);
  const file = join(repoRoot, "test/fixtures/local", `.${name}.generated.yaml`);
  await writeFile(file, text);
  return file;
}

function buildArgs(file: string, name: string): string[] {
  return ["build", file, "--cache-dir", cacheDir, "--work-dir", join(scratch, name, "work"), "--output-dir", join(scratch, name, "output")];
}

/** Capability number → bit, from linux/capability.h. */
const capability = { chown: 0, dac_override: 1, sys_module: 16, sys_rawio: 17, sys_ptrace: 19, sys_admin: 21, sys_time: 25, mac_admin: 33, bpf: 39 };

describe("provisioners are confined: root in the tree is not root on the build host", { timeout: 10 * 60_000 }, () => {
  it("runs them as an unprivileged host id, with no_new_privs, bounded capabilities, and nowhere to escape to", async () => {
    const marker = join(scratch, "escaped-to-the-host");
    await mkdir(join(scratch, "probe"), { recursive: true });
    // A double-chroot escape (perl is in every Debian base): chroot into a subdirectory, climb
    // out of it with "..", and chroot to wherever that lands.
    const escape = `mkdir "/kiln-x"; chroot "/kiln-x" or die "chroot: $!"; chdir ".." for 1..64; chroot "." or die "chroot back: $!"; if (open(my $f, ">", "${marker}")) { print $f "escaped"; close $f; print "escape wrote\\n" } else { print "escape could not write: $!\\n" } opendir(my $d, "/"); print "escaped to: ", join(" ", sort grep { !/^\\./ } readdir $d), "\\n";`;
    const file = await template("confinement", [
      "  - type: shell",
      "    inline:",
      `      - 'echo "uid map: $(tr -s " " < /proc/self/uid_map)"'`,
      "      - 'grep -E \"^(NoNewPrivs|CapBnd):\" /proc/self/status'",
      `      - ${JSON.stringify(`perl -e '${escape}'`)}`,
      "",
    ].join("\n"));
    const run = await runKiln(buildArgs(file, "probe"));
    assert.equal(run.code, 0, `build failed:\n${run.stdout}\n${run.stderr}`);
    const said = (label: string): string => (new RegExp(`${label}:?\\s*(.*)$`, "m").exec(run.stdout)?.[1] ?? "").trim();
    // Root in the tree is an id of the foreign range outside it, when kiln runs as real root.
    if (process.getuid?.() === 0) assert.match(said("uid map"), /^\s*0 2147352576 65536$/);
    assert.equal(said("NoNewPrivs"), "1");
    const bounding = BigInt(`0x${said("CapBnd")}`);
    for (const kept of [capability.chown, capability.dac_override]) assert.notEqual(bounding & (1n << BigInt(kept)), 0n);
    for (const [name, bit] of Object.entries(capability).filter(([n]) => !["chown", "dac_override"].includes(n))) {
      assert.equal(bounding & (1n << BigInt(bit)), 0n, `${name} is in the bounding set`);
    }
    assert.match(run.stdout, /escape could not write/);
    // Where the escape lands: kiln's small jail, not the host's root (no /etc, /home or /var).
    assert.doesNotMatch(said("escaped to"), /\b(etc|home|var|root)\b/);
    await assert.rejects(access(marker), "the escape wrote a file on the build host");
  });

  it("does not unpack a base another local user planted in a shared cache", { skip: process.getuid?.() !== 0 && "needs root to chown" }, async () => {
    // A cache in a shared sticky place (like /var/tmp): another user made bases/ first and put
    // there, under the key of the fixture's base, a tarball of their own (here: a copy of the real one).
    const shared = join(scratch, "shared");
    await mkdir(shared, { mode: 0o1777 });
    await chmod(shared, 0o1777);
    await mkdir(join(shared, "bases"), { mode: 0o755 });
    const real = join(cacheDir, "bases");
    const key = (await readdir(real)).find((n) => /^bookworm-minbase-[0-9a-f]+\.tar$/.test(n))?.replace(/\.tar$/, "");
    assert.ok(key !== undefined, "the shared test base is cached");
    for (const ext of [".json", ".tar"]) await copyFile(join(real, `${key}${ext}`), join(shared, "bases", `${key}${ext}`));
    await chown(join(shared, "bases"), nobody, nobody);
    const file = await template("planted", "  - type: shell\n    inline: ['echo provisioned from the planted base']\n");
    const run = await runKiln(["build", file, "--cache-dir", shared, "--work-dir", join(scratch, "planted", "work"), "--output-dir", join(scratch, "planted", "output")]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /bases \(owner uid 65534, mode 0755\): it is owned by another user/);
    assert.doesNotMatch(run.stdout, /provisioned from the planted base/);
  });

  it("hands a provisioner no descriptor but its stdio, whatever kiln itself inherited", async () => {
    const file = await template("descriptors", "  - type: shell\n    inline: ['echo \"fds: $(ls /proc/self/fd | tr \"\\\\n\" \" \")\"']\n");
    // kiln started with more open descriptors than stdio (a CI runner, a shell's fd 9, …): not close-on-exec in kiln.
    const child = spawn(process.execPath, [kilnBin, ...buildArgs(file, "descriptors")], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe", "pipe", "pipe", "pipe"] });
    let stdout = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => { stdout += d; });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 0, stdout);
    const fds = (/fds: (.*)$/m.exec(stdout)?.[1] ?? "").trim().split(" ").map(Number);
    // 0-2, and the directory ls itself opened to list them.
    assert.ok(fds.length >= 3 && fds.every((fd) => fd <= 3), `a provisioner holds descriptors ${fds.join(" ")}`);
  });

  it("dies with kiln: a provisioner's processes do not outlive a killed kiln", async () => {
    const token = String(31_000 + Math.floor(Math.random() * 900));
    const file = await template("dies-with-kiln", `  - type: shell\n    inline: ['sleep ${token} & echo provisioner started; wait']\n`);
    const build = startKiln(buildArgs(file, "killed"));
    const deadline = Date.now() + 5 * 60_000;
    while (!build.stdout().includes("provisioner started") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.match(build.stdout(), /provisioner started/);
    build.child.kill("SIGKILL");
    await build.done;
    const alive = (): string => spawnSync("pgrep", ["-f", `^sleep ${token}$`], { encoding: "utf8" }).stdout.trim();
    for (let i = 0; i < 50 && alive() !== ""; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(alive(), "", `sleep ${token} outlived kiln`);
  });
});
