import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { access, chmod, lstat, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { keyctlSyscall } from "../src/communicator/chroot-communicator.js";
import { repoRoot, runKiln, type KilnRun } from "./helpers/kiln-process.js";
import { ustar, type TarMember } from "./helpers/ustar.js";

/**
 * Attacks on the build host through what kiln's own host-side code does with a hostile input,
 * as opposed to what a provisioner can do from inside the tree (confinement.test.ts).
 */
const scratch = mkdtempSync(join(tmpdir(), "kiln-attack-"));
after(() => rm(scratch, { recursive: true, force: true }));
const asRoot = process.getuid?.() === 0;

/** Builds from a base tarball made of `members`; the template is otherwise as small as can be. */
async function buildFromTarball(name: string, members: readonly TarMember[]): Promise<KilnRun> {
  const directory = join(scratch, name);
  await mkdir(directory);
  await writeFile(join(directory, "base.tar"), ustar(members));
  await writeFile(join(directory, "kiln.yaml"), [
    `name: ${name}`,
    "builders:",
    "  - type: local",
    "    base: {tarball: base.tar}",
    "    image: {formats: [raw]}",
    "provisioners:",
    "  - type: shell",
    "    inline: ['echo provisioned']",
    "",
  ].join("\n"));
  return runKiln(["build", join(directory, "kiln.yaml"), "--work-dir", join(directory, "work"), "--output-dir", join(directory, "output"), "--cache-dir", join(directory, "cache")]);
}

/** A directory only root can enter: where no build may ever write. */
async function hostDirectory(name: string): Promise<string> {
  const path = join(scratch, name);
  await mkdir(path, { mode: 0o700 });
  await chmod(path, 0o700);
  return path;
}

describe("a hostile base tarball cannot reach the build host", { timeout: 5 * 60_000, skip: !asRoot && "kiln adds a base's device nodes as real root only" }, () => {
  it("does not write through a /dev that the base made a link to a host directory", async () => {
    const victim = await hostDirectory("victim-dev-link");
    // kiln unpacks all but /dev/* as the tree's (unprivileged) root, then /dev/* as real root:
    // the first pass makes ./dev a link to the host directory, the second wrote through it.
    const run = await buildFromTarball("dev-link", [
      { name: "./dev", type: "symlink", linkName: victim },
      { name: "./dev/pwned", type: "file", mode: 0o4755, content: "#!/bin/sh\nid\n" },
    ]);
    assert.deepEqual(await readdir(victim), [], `kiln wrote into ${victim} on the host:\n${run.stdout}\n${run.stderr}`);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /\/dev is a symbolic link/);
  });

  it("does not link a /dev entry to a host file through a link the base planted elsewhere in the tree", async () => {
    const victim = await hostDirectory("victim-hardlink");
    const secret = join(victim, "secret");
    await writeFile(secret, "host secret\n", { mode: 0o600 });
    // ./etc is a link to the host directory; the hard link ./dev/h -> ./etc/secret resolved
    // through it: the host's file became part of the tree (and of the image), and kiln then
    // gave it to the tree's ids.
    const run = await buildFromTarball("hardlink", [
      { name: "./etc", type: "symlink", linkName: victim },
      { name: "./dev/", type: "directory" },
      { name: "./dev/h", type: "hardlink", linkName: "./etc/secret" },
    ]);
    const after = await lstat(secret);
    assert.equal(after.nlink, 1, `the host's ${secret} was linked into the tree:\n${run.stdout}\n${run.stderr}`);
    assert.equal(after.uid, 0, `the host's ${secret} was given to uid ${after.uid}`);
    assert.equal(run.code, 1, run.stdout + run.stderr);
  });
});

describe("kiln never runs a program from the tree on the build host", { timeout: 5 * 60_000 }, () => {
  it("looks tools up on absolute PATH entries only, though it runs them with the tree as working directory", async () => {
    // kiln unpacks into the tree and runs mke2fs from it with the tree as working directory;
    // a relative entry in the builder's PATH (".", or an empty one as in "PATH=:/usr/bin")
    // then found a program the image planted at its root, run on the host (as real root, for env).
    const marker = join(scratch, "planted-program-ran");
    const planted = `#!/bin/sh\necho "$(id -u) $0" >> ${marker}\nexec /usr/bin/$(basename "$0") "$@"\n`;
    const fixture = await readFile(join(repoRoot, "test/fixtures/local/base.yaml"), "utf8");
    const template = join(repoRoot, "test/fixtures/local", ".attack-path.generated.yaml");
    await writeFile(template, fixture.replace(/^provisioners:[\s\S]*$/m, [
      "provisioners:",
      "  - type: shell",
      "    env:",
      `      PLANTED: ${JSON.stringify(planted)}`,
      "    inline:",
      "      - 'for p in env unshare mke2fs; do printf \"%s\" \"$PLANTED\" > /$p; chmod 755 /$p; done'",
      "",
    ].join("\n")));
    const directory = join(scratch, "path");
    const run = await runKiln(["build", template, "--cache-dir", process.env.KILN_TEST_CACHE_DIR ?? "/var/tmp/kiln-test-cache", "--work-dir", join(directory, "work"), "--output-dir", join(directory, "output")],
      { PATH: `.:${process.env.PATH ?? "/usr/bin:/bin"}` });
    const ran = await readFile(marker, "utf8").catch(() => "");
    assert.equal(ran, "", `a program from the tree ran on the host: ${ran}`);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    await assert.rejects(access(marker));
  });
});

/** add_key(2)'s number, for the architectures whose keyctl kiln knows. */
const addKeySyscall: Partial<Record<string, number>> = { x64: 248, arm64: 217, riscv64: 217, loong64: 217, ia32: 286, arm: 309, ppc64: 269, s390x: 278 };

describe("a provisioner cannot reach what kiln holds outside the tree", { timeout: 5 * 60_000 }, () => {
  it("does not see kiln's session keyring (a Kerberos cache or a token kept with keyctl)", async () => {
    const keyctl = keyctlSyscall[process.arch];
    assert.ok(keyctl !== undefined, `keyctl's syscall number on ${process.arch}`);
    const secret = `SESSION-KEY-${process.pid}-7c41`;
    // The provisioner reads every key in its session keyring (keyctl READ of @s, then of each id).
    const reader = `my $b = "\\0" x 4096; my $n = syscall(${keyctl}, 11, -3, $b, 4096); print "session keyring: ", ($n < 0 ? "unreadable" : "$n bytes"), "\\n"; for my $id ($n > 0 ? unpack("l*", substr($b, 0, $n)) : ()) { my $k = "\\0" x 4096; my $m = syscall(${keyctl}, 11, $id, $k, 4096); print "key: ", ($m < 0 ? "unreadable" : substr($k, 0, $m)), "\\n" }`;
    const fixture = await readFile(join(repoRoot, "test/fixtures/local/base.yaml"), "utf8");
    const template = join(repoRoot, "test/fixtures/local", ".attack-keyring.generated.yaml");
    await writeFile(template, fixture.replace(/^provisioners:[\s\S]*$/m, `provisioners:\n  - type: shell\n    inline:\n      - ${JSON.stringify(`perl -e '${reader}'`)}\n`));
    const directory = join(scratch, "keyring");
    // kiln runs in a session keyring of its own that holds the secret, as after a login with pam_keyinit.
    const joinSession = `my ($s, $t, $d, $p) = ("kiln-attack", "user", "kiln-attack", "${secret}"); syscall(${keyctl}, 1, $s) >= 0 or die "join: $!"; syscall(${addKeySyscall[process.arch] ?? -1}, $t, $d, $p, length($p), -3) >= 0 or die "add_key: $!"; exec @ARGV`;
    const run = await runKiln(["build", template, "--cache-dir", process.env.KILN_TEST_CACHE_DIR ?? "/var/tmp/kiln-test-cache", "--work-dir", join(directory, "work"), "--output-dir", join(directory, "output")], {}, ["perl", "-e", joinSession]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /session keyring: /, "the probe ran");
    assert.doesNotMatch(run.stdout, new RegExp(secret), "the provisioner read a key from kiln's session keyring");
  });
});
