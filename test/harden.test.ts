import assert from "node:assert/strict";
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { ed25519PublicLine } from "../src/communicator/openssh-key.js";
import { ChrootCommunicator } from "../src/communicator/chroot-communicator.js";
import { hardeningScript } from "../src/harden/hardening-script.js";
import { hardenDefaults } from "../src/template/schema.js";
import type { ImdsSettings } from "./helpers/imds-emulator.js";
import { repoRoot, runKiln } from "./helpers/kiln-process.js";

const run = promisify(execFile);
const cacheDir = process.env.KILN_TEST_CACHE_DIR ?? "/var/tmp/kiln-test-cache";
const emulator = join(repoRoot, "dist/test/helpers/imds-emulator.js");

/** A template on the same base as the other whole-process tests (so the base is built once). */
const template = `name: hardened
builders:
  - type: local
    base:
      mmdebstrap: {suite: bookworm, variant: minbase, packages: [openssh-server, curl, sudo]}
    image: {formats: [raw]}
provisioners:
  - type: shell
    inline:
      - echo 'root:hunter2-root' | chpasswd
      - useradd --create-home olduser && echo 'olduser:hunter2-old' | chpasswd
      - useradd --create-home keeper && echo 'keeper:kept-on-purpose' | chpasswd
      - printf 'PermitRootLogin yes\\nPasswordAuthentication yes\\n' >> /etc/ssh/sshd_config
harden:
  default_user: admin
  keep_passwords: [keeper]
audit: {fail_on: critical}
`;

function key(comment: string): string {
  return ed25519PublicLine(generateKeyPairSync("ed25519").publicKey, comment);
}

const shadowField = (shadow: string, user: string): string => shadow.split("\n").find((l) => l.startsWith(`${user}:`))?.split(":")[1] ?? "(no such user)";

describe("hardening and the first-boot service (a real Debian image, a real IMDS emulator in a network namespace)", { timeout: 10 * 60_000 }, () => {
  const scratch = mkdtempSync(join(tmpdir(), "kiln-harden-"));
  const tree = join(scratch, "tree");
  const namespace = `kiln-imds-${process.pid}`;
  let audit: { findings: { rule: string; severity: string; message: string }[] };
  let adminIds: { uid: number; gid: number };

  before(async () => {
    await writeFile(join(scratch, "hardened.yaml"), template);
    const build = await runKiln(["build", join(scratch, "hardened.yaml"), "--cache-dir", cacheDir, "--work-dir", join(scratch, "work"), "--output-dir", join(scratch, "out")]);
    assert.equal(build.code, 0, build.stdout + build.stderr);
    assert.match(build.stdout, /sshd -T: key-only for root, admin, kiln-check /, "the image's own sshd -T judged the result");
    const [out] = await readdir(join(scratch, "out"));
    const artifact = join(scratch, "out", out ?? "");
    audit = JSON.parse(await readFile(join(artifact, "audit.json"), "utf8")) as typeof audit;
    // The image as an instance would boot it: every file out of the ext4 image, never mounted.
    await mkdir(tree);
    execFileSync("debugfs", ["-R", `rdump / ${tree}`, join(artifact, "disk.raw")], { stdio: "ignore" });
    const passwd = await readFile(join(tree, "etc/passwd"), "utf8");
    const admin = passwd.split("\n").find((l) => l.startsWith("admin:"))?.split(":") ?? [];
    adminIds = { uid: Number(admin[2]), gid: Number(admin[3]) };
    // veth inside a network namespace of the test's own, holding the metadata service's address.
    for (const args of [["netns", "add", namespace], ["-n", namespace, "link", "set", "lo", "up"], ["-n", namespace, "link", "add", "imds0", "type", "veth", "peer", "name", "imds1"],
      ["-n", namespace, "addr", "add", "169.254.169.254/32", "dev", "imds0"], ["-n", namespace, "link", "set", "imds0", "up"], ["-n", namespace, "link", "set", "imds1", "up"]]) {
      execFileSync("ip", args);
    }
  });
  after(async () => {
    execFileSync("ip", ["netns", "del", namespace], { stdio: "ignore" });
    await rm(scratch, { recursive: true, force: true });
  });

  /** The metadata service, in the namespace; resolves once it listens. */
  async function startImds(settings: Omit<ImdsSettings, "address">): Promise<{ process: ChildProcess; requests: () => { method: string; path: string; status: number; token: boolean; ttl: string | null }[]; stop: () => Promise<void> }> {
    const child = spawn("ip", ["netns", "exec", namespace, process.execPath, emulator, JSON.stringify({ address: "169.254.169.254", ...settings })], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on("data", (d: Buffer) => { out += d.toString(); if (out.includes("listening\n")) resolve(); });
      child.on("exit", (code) => reject(new Error(`IMDS emulator exited (${code})`)));
    });
    return {
      process: child,
      requests: () => out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { method: string; path: string; status: number; token: boolean; ttl: string | null }),
      stop: async () => { child.kill("SIGTERM"); await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.on("exit", r))); },
    };
  }

  /**
   * The installed script, unchanged, as root in the image (its own /dev and /proc), inside the
   * namespace; booted "under systemd" (/run/systemd/system), which starts sshd after it, so the
   * script restarts no sshd here.
   */
  async function firstBoot(): Promise<string> {
    const { stdout } = await run("ip", ["netns", "exec", namespace, "unshare", "--mount", "--fork", "sh", "-ec",
      'mount --rbind /dev "$1/dev"; mount -t proc proc "$1/proc"; mkdir -p "$1/run/systemd/system"; exec chroot "$1" /usr/local/sbin/kiln-first-boot', "first-boot", tree]);
    return stdout;
  }

  async function settings(lines: string): Promise<void> {
    const conf = join(tree, "etc/kiln/first-boot.conf");
    await writeFile(conf, (await readFile(conf, "utf8")).replace(/^# test settings[\s\S]*$/m, "") + `# test settings\n${lines}\n`);
  }

  const hostKeyFiles = async (): Promise<string[]> => (await readdir(join(tree, "etc/ssh"))).filter((f) => /^ssh_host_.*_key\.pub$/.test(f)).sort();

  it("locks passwords (root's whatever it was), keeps the ones the template names, and makes the default user", async () => {
    const shadow = await readFile(join(tree, "etc/shadow"), "utf8");
    assert.match(shadowField(shadow, "root"), /^!/, "root is locked");
    assert.match(shadowField(shadow, "olduser"), /^!\$/, "a usable password is locked (its hash kept behind the !)");
    assert.match(shadowField(shadow, "keeper"), /^\$/, "keep_passwords keeps it usable");
    assert.match(shadowField(shadow, "admin"), /^!/, "the default user has no password");
    const sudoers = join(tree, "etc/sudoers.d/90-kiln-admin");
    assert.equal(await readFile(sudoers, "utf8"), "admin ALL=(ALL) NOPASSWD:ALL\n");
    assert.equal((await stat(sudoers)).mode & 0o777, 0o440);
  });

  it("makes sshd key-only with the image's own sshd, which accepts the result (sshd -t, sshd -T)", async () => {
    const config = await readFile(join(tree, "etc/ssh/sshd_config"), "utf8");
    assert.match(config, /^# BEGIN kiln hardening[^\n]*\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n/);
    assert.match(config, /^# kiln: PermitRootLogin yes$/m, "the provisioner's line is commented out");
    assert.doesNotMatch(config, /^PasswordAuthentication yes$/m);
    assert.equal(await readFile(join(tree, "etc/ssh/sshd_config.d/00-kiln-hardening.conf"), "utf8"), "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitEmptyPasswords no\nUseDNS no\n");
    assert.deepEqual(await hostKeyFiles(), [], "no host keys in the image");
    const { stdout } = await run("unshare", ["--mount", "--fork", "sh", "-ec", [
      'mount --rbind /dev "$1/dev"; mount -t proc proc "$1/proc"; mkdir -p "$1/run/sshd"',
      'chroot "$1" ssh-keygen -q -t ed25519 -N "" -f /tmp/check_key',
      'chroot "$1" /usr/sbin/sshd -t -f /etc/ssh/sshd_config -h /tmp/check_key',
      'chroot "$1" /usr/sbin/sshd -T -f /etc/ssh/sshd_config -h /tmp/check_key -C user=root,host=x,addr=192.0.2.1',
      'rm -f "$1/tmp/check_key" "$1/tmp/check_key.pub"; rmdir "$1/run/sshd"',
    ].join("\n"), "sshd-check", tree]);
    for (const effective of ["permitrootlogin without-password", "passwordauthentication no", "kbdinteractiveauthentication no", "permitemptypasswords no", "usedns no"]) {
      assert.match(stdout, new RegExp(`^${effective}$`, "m"), effective);
    }
  });

  it("audits clean: nothing about sshd; at high or above only the password the template chose to keep", () => {
    assert.deepEqual(audit.findings.filter((f) => f.rule.startsWith("sshd-")), []);
    assert.deepEqual(audit.findings.filter((f) => f.severity === "high" || f.severity === "critical").map((f) => `${f.rule} ${f.message}`), ["password-hash keeper has a password (hash $y$)"]);
  });

  it("installs kiln's first-boot service: rc.local without systemd, a unit before sshd with it", async () => {
    assert.equal((await stat(join(tree, "usr/local/sbin/kiln-first-boot"))).mode & 0o777, 0o755);
    assert.match(await readFile(join(tree, "etc/kiln/first-boot.conf"), "utf8"), /^KEY_USER=admin$/m);
    assert.match(await readFile(join(tree, "etc/rc.local"), "utf8"), /^\/usr\/local\/sbin\/kiln-first-boot\nexit 0$/m);
    // The same step on a copy that has systemd: a unit, enabled, ordered before sshd.
    const copy = join(scratch, "with-systemd");
    execFileSync("cp", ["-a", tree, copy]);
    await mkdir(join(copy, "usr/lib/systemd"), { recursive: true });
    await writeFile(join(copy, "usr/lib/systemd/systemd"), "#!/bin/sh\n");
    await chmod(join(copy, "usr/lib/systemd/systemd"), 0o755);
    // And an sshd without PAM, which refuses keys to a !-locked account.
    const config = join(copy, "etc/ssh/sshd_config");
    await writeFile(config, (await readFile(config, "utf8")).replace(/^UsePAM yes$/m, "UsePAM no"));
    await new ChrootCommunicator(copy).runScript(hardeningScript({ ...hardenDefaults, default_user: "admin" }), { what: "hardening again", signal: new AbortController().signal, interpreter: "/bin/sh" });
    assert.match(await readFile(join(copy, "etc/systemd/system/kiln-first-boot.service"), "utf8"), /^Before=ssh\.service sshd\.service$/m);
    assert.equal(execFileSync("readlink", [join(copy, "etc/systemd/system/multi-user.target.wants/kiln-first-boot.service")], { encoding: "utf8" }).trim(), "../kiln-first-boot.service");
    const again = await readFile(join(copy, "etc/ssh/sshd_config"), "utf8");
    assert.equal(again.match(/# BEGIN kiln hardening/g)?.length, 1, "hardening twice leaves one block");
    const shadow = await readFile(join(copy, "etc/shadow"), "utf8");
    assert.equal(shadowField(shadow, "admin"), "*", "the key user is locked with *, which sshd without PAM accepts keys for");
    assert.match(shadowField(shadow, "root"), /^!/);
    await rm(copy, { recursive: true, force: true });
  });

  it("configures cloud-init instead where the image has it (first_boot: auto)", async () => {
    const copy = join(scratch, "with-cloud-init");
    execFileSync("cp", ["-a", tree, copy]);
    await writeFile(join(copy, "usr/bin/cloud-init"), "#!/bin/sh\n");
    await chmod(join(copy, "usr/bin/cloud-init"), 0o755);
    await rm(join(copy, "usr/local/sbin/kiln-first-boot"));
    const said: string[] = [];
    await new ChrootCommunicator(copy).runScript(hardeningScript({ ...hardenDefaults, default_user: "admin" }), { what: "hardening", signal: new AbortController().signal, interpreter: "/bin/sh", onStdoutLine: (l) => said.push(l) });
    const config = await readFile(join(copy, "etc/cloud/cloud.cfg.d/90-kiln-hardening.cfg"), "utf8");
    for (const line of ["ssh_pwauth: false", "ssh_deletekeys: true", "    name: admin", "    lock_passwd: true"]) assert.ok(config.split("\n").includes(line), line);
    assert.ok(said.some((l) => l.startsWith("first boot: cloud-init")), said.join("\n"));
    await assert.rejects(stat(join(copy, "usr/local/sbin/kiln-first-boot")), { code: "ENOENT" }, "kiln's own service is not installed beside cloud-init");
    await rm(copy, { recursive: true, force: true });
  });

  it("at first boot: fresh host keys, printed for pinning; the launch key over IMDSv2 into the default user's authorized_keys", async () => {
    const launchKey = key("launch-1");
    const imds = await startImds({ instanceId: "i-0aaa", key: launchKey, tokens: "required" });
    try {
      const console = await firstBoot();
      const keys = join(tree, "home/admin/.ssh/authorized_keys");
      assert.equal(await readFile(keys, "utf8"), `${launchKey}\n`);
      for (const [path, mode] of [[join(tree, "home/admin/.ssh"), 0o700], [keys, 0o600]] as const) {
        const s = await stat(path);
        assert.equal(s.mode & 0o777, mode, path);
        assert.deepEqual({ uid: s.uid, gid: s.gid }, adminIds, `${path} belongs to admin`);
      }
      // The block lists exactly the keys that were made, as ssh-keygen -l sees them.
      const block = /-----BEGIN SSH HOST KEY FINGERPRINTS-----\n([\s\S]*?)-----END SSH HOST KEY FINGERPRINTS-----/.exec(console)?.[1] ?? "";
      const made = await hostKeyFiles();
      assert.ok(made.length >= 2, `host keys were made: ${made.join(", ")}`);
      const expected = made.map((f) => execFileSync("ssh-keygen", ["-l", "-f", join(tree, "etc/ssh", f)], { encoding: "utf8" }).split(" ")[1]);
      assert.deepEqual([...block.matchAll(/SHA256:\S+/g)].map((m) => m[0]).sort(), expected.sort());
      assert.doesNotMatch(console, /PRIVATE KEY/, "no private key material on the console");
      const requests = imds.requests();
      assert.deepEqual(requests[0], { method: "PUT", path: "/latest/api/token", status: 200, token: false, ttl: "300" });
      assert.ok(requests.slice(1).every((r) => r.method === "GET" && r.token && r.status === 200), "every read carried the token");

      // Again on the same instance: nothing changes.
      const before = await Promise.all(made.map((f) => readFile(join(tree, "etc/ssh", f), "utf8")));
      assert.match(await firstBoot(), /already ran for i-0aaa: nothing to do/);
      assert.deepEqual(await Promise.all(made.map((f) => readFile(join(tree, "etc/ssh", f), "utf8"))), before, "the same host keys");
      assert.equal(await readFile(keys, "utf8"), `${launchKey}\n`, "no duplicate key");
    } finally {
      await imds.stop();
    }
  });

  it("runs again for a new instance (an image made from an instance of itself): the earlier instance's key replaced, not kept", async () => {
    const oldHostKeys = await Promise.all((await hostKeyFiles()).map((f) => readFile(join(tree, "etc/ssh", f), "utf8")));
    const launchKey = key("launch-2");
    const imds = await startImds({ instanceId: "i-0bbb", key: launchKey, tokens: "required" });
    try {
      assert.match(await firstBoot(), /added the launch key to \/home\/admin\/\.ssh\/authorized_keys/);
      const newHostKeys = await Promise.all((await hostKeyFiles()).map((f) => readFile(join(tree, "etc/ssh", f), "utf8")));
      assert.ok(newHostKeys.every((k) => !oldHostKeys.includes(k)), "new host keys");
      // The earlier instance's key (launch-1) is gone: only this instance's own key logs in.
      assert.equal(await readFile(join(tree, "home/admin/.ssh/authorized_keys"), "utf8"), `${launchKey}\n`);
      assert.match(await readFile(join(tree, "var/lib/kiln/first-boot.instance"), "utf8"), /^i-0bbb\n$/);
    } finally {
      await imds.stop();
    }
  });

  it("waits for a metadata service that comes up late", async () => {
    await settings("ATTEMPTS=40\nDELAY=0.25");
    const launchKey = key("launch-late");
    const booting = firstBoot();
    await new Promise((r) => setTimeout(r, 2000));
    const imds = await startImds({ instanceId: "i-0ccc", key: launchKey, tokens: "required" });
    try {
      assert.match(await booting, /added the launch key/);
      assert.ok((await readFile(join(tree, "home/admin/.ssh/authorized_keys"), "utf8")).includes(launchKey));
    } finally {
      await imds.stop();
    }
  });

  it("uses IMDSv1 only when allowed, and then only where tokens are optional", async () => {
    const launchKey = key("launch-v1");
    // No token to be had (a proxy in the way), IMDSv1 not allowed: nothing is read.
    let imds = await startImds({ instanceId: "i-0ddd", key: launchKey, tokens: "optional", refuseTokens: true });
    try {
      await settings("IMDS_V1_FALLBACK=no");
      assert.match(await firstBoot(), /no IMDSv2 token \(HTTP 403\) and IMDSv1 is not allowed/);
      assert.deepEqual(imds.requests().map((r) => r.method), ["PUT"]);
    } finally {
      await imds.stop();
    }
    // Allowed, but the service requires tokens: refused with 401, no key.
    imds = await startImds({ instanceId: "i-0ddd", key: launchKey, tokens: "required", refuseTokens: true });
    try {
      await settings("IMDS_V1_FALLBACK=yes");
      const console = await firstBoot();
      assert.match(console, /using IMDSv1, as configured/);
      assert.match(console, /no instance id \(HTTP 401\)/);
      assert.ok(!(await readFile(join(tree, "home/admin/.ssh/authorized_keys"), "utf8")).includes(launchKey));
    } finally {
      await imds.stop();
    }
    // Allowed, and tokens optional: the key comes over IMDSv1.
    imds = await startImds({ instanceId: "i-0ddd", key: launchKey, tokens: "optional", refuseTokens: true });
    try {
      assert.match(await firstBoot(), /added the launch key/);
      assert.ok(imds.requests().filter((r) => r.method === "GET").every((r) => !r.token));
    } finally {
      await imds.stop();
    }
  });

  it("randomizes a root password that is not locked, never printing it, and says when no key was given", async () => {
    const shadowFile = join(tree, "etc/shadow");
    const keeperHash = shadowField(await readFile(shadowFile, "utf8"), "keeper");
    await writeFile(shadowFile, (await readFile(shadowFile, "utf8")).replace(/^root:[^:]*:/m, `root:${keeperHash}:`));
    await settings("IMDS_V1_FALLBACK=no");
    const imds = await startImds({ instanceId: "i-0eee", tokens: "required" });
    try {
      const console = await firstBoot();
      assert.match(console, /randomized root's password/);
      assert.match(console, /launched without a key pair: no key to add/);
      const root = shadowField(await readFile(shadowFile, "utf8"), "root");
      assert.notEqual(root, keeperHash);
      assert.match(root, /^\$/, "a real (random) hash, not locked");
    } finally {
      await imds.stop();
    }
  });

  it("the emulator keeps IMDSv2's rules: TTL header required, no token through a proxy, 401 without a token", async () => {
    const imds = await startImds({ instanceId: "i-0fff", key: key("x"), tokens: "required" });
    try {
      const curl = (...args: string[]) => run("ip", ["netns", "exec", namespace, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", ...args]).then((r) => r.stdout);
      assert.equal(await curl("-X", "PUT", "http://169.254.169.254/latest/api/token"), "400");
      assert.equal(await curl("-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", "-H", "X-Forwarded-For: 10.0.0.1", "http://169.254.169.254/latest/api/token"), "403");
      assert.equal(await curl("http://169.254.169.254/latest/meta-data/instance-id"), "401");
      assert.equal(await curl("-H", "X-aws-ec2-metadata-token: forged", "http://169.254.169.254/latest/meta-data/instance-id"), "401");
    } finally {
      await imds.stop();
    }
  });
});
