import assert from "node:assert/strict";
import { constants, createPublicKey, publicEncrypt, type KeyObject } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { chmod, mkdir, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { DescribeImagesCommand, DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand, EC2Client } from "@aws-sdk/client-ec2";
import { decodeCommand } from "../src/windows/powershell.js";
import type { FaultProxy } from "./helpers/fault-proxy.js";
import { startAwsStandIn, type AwsStandIn } from "./helpers/aws-stand-in.js";
import { startKiln } from "./helpers/kiln-process.js";
import type { Moto } from "./helpers/moto.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";

const byKiln = [{ Name: "tag-key", Values: ["kiln:build-id"] }];
// moto's one Windows image: Windows_Server-2016-English-Full-Base-2017.10.13, owned by 801119661308.
const windows2016 = "    source_ami_filter: {filters: {name: Windows_Server-2016-English-Full-Base-*}, owners: [\"801119661308\"], most_recent: true}\n    instance_type: t3.large\n    ami_name: kiln-windows-${{ uuid }}\n    platform: windows\n";
const pinnedZip = `    windows: {openssh_sha256: ${"c".repeat(64)}, get_password: true, password_timeout: 30}\n`;

/** An ssh-rsa public key line as a KeyObject (to encrypt a password the way EC2 does). */
function rsaPublicKey(line: string): KeyObject {
  const blob = Buffer.from(line.split(" ")[1] ?? "", "base64");
  const fields: Buffer[] = [];
  for (let at = 0; at < blob.length;) {
    const length = blob.readUInt32BE(at);
    fields.push(blob.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  const [, e, n] = fields;
  const unsigned = (b: Buffer | undefined): string => (b !== undefined && b[0] === 0 ? b.subarray(1) : b ?? Buffer.alloc(0)).toString("base64url");
  return createPublicKey({ key: { kty: "RSA", e: unsigned(e), n: unsigned(n) }, format: "jwk" });
}

describe("kiln build with platform: windows (against moto; a real sshd stands in for Windows' OpenSSH)", { timeout: 10 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-win-"));
  let aws: AwsStandIn;
  let env: NodeJS.ProcessEnv;
  let moto: Moto;
  let ec2: EC2Client;
  let proxy: FaultProxy;
  before(async () => {
    aws = await startAwsStandIn({ KILN_STATE_DIR: join(dir, "state") });
    ({ env, moto, proxy } = aws);
    ec2 = aws.ec2();
  });
  after(async () => {
    await aws?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => moto.reset());

  async function template(name: string, body: string): Promise<string> {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, `name: ${name}\nbuilders:\n  - type: amazon-ebs\n    region: us-east-1\n    endpoint: ${proxy.endpoint}\n    wait: {delay_seconds: 0.1, timeout_seconds: 30}\n${body}`);
    return file;
  }

  async function leftovers(): Promise<string[]> {
    const instances = (await ec2.send(new DescribeInstancesCommand({ Filters: byKiln }))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    const keys = (await ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs ?? [];
    const groups = (await ec2.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups ?? [];
    return [
      ...instances.filter((i) => i.State?.Name !== "terminated").map((i) => `instance ${i.InstanceId}`),
      ...keys.filter((k) => k.KeyName?.startsWith("kiln-") === true).map((k) => `key pair ${k.KeyName}`),
      ...groups.filter((g) => g.GroupName?.startsWith("kiln-") === true).map((g) => `security group ${g.GroupId}`),
    ];
  }

  /** The build's imported public key, once ImportKeyPair has run. */
  async function importedKey(prefix: string, build: ReturnType<typeof startKiln>): Promise<string> {
    for (;;) {
      const key = ((await ec2.send(new DescribeKeyPairsCommand({ IncludePublicKey: true }))).KeyPairs ?? []).find((k) => k.KeyName?.startsWith(prefix) === true)?.PublicKey;
      if (key !== undefined) return key;
      if (build.child.exitCode !== null) throw new Error(`the build ended before importing its key: ${build.stdout()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("refuses a Server 2016 build without the OpenSSH zip's SHA-256, before creating anything", async () => {
    const build = startKiln(["build", await template("win-nohash", `${windows2016}    communicator: none\n`), "--output-dir", join(dir, "out-nohash")], env);
    const run = await build.done;
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: Windows Server 2016 gets OpenSSH from the Win32-OpenSSH release zip, and windows\.openssh_sha256 is not set\n {2}\(set windows\.openssh_sha256 to the SHA-256 of OpenSSH-Win64\.zip of v9\.5\.0\.0p1-Beta/m);
    assert.deepEqual(await leftovers(), []);
  });

  it("refuses a spot build whose launch agent's sysprep shuts Windows down (EC2Config), before creating anything", async () => {
    const run = await (startKiln(["build", await template("win-spot", `${windows2016}    spot_price: auto
    windows: {launch_agent: ec2config, openssh_sha256: ${"c".repeat(64)}}
`), "--output-dir", join(dir, "out-spot")], env)).done;
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /^error: ec2config's sysprep shuts the instance down, and a spot instance that shuts down ends before it can be imaged\n {2}\(build this image on demand/m);
    assert.equal(proxy.calls.get("ImportKeyPair") ?? 0, 0);
    assert.deepEqual(await leftovers(), []);
  });

  it("launches with generated user data and an RSA key pair, decrypts the Administrator password, images, tags and cleans up", async () => {
    proxy.inject("RunInstances", { delayMs: 1000 });
    proxy.inject("GetPasswordData", {});
    const password = "Kiln-Pa$$w0rd-7b1e";
    const build = startKiln(["build", await template("win", `${windows2016}    communicator: none\n${pinnedZip}`), "--output-dir", join(dir, "out-win"), "--show-password"], env);
    // EC2 encrypts the password with the key pair's public key; so does this stand-in for it.
    const publicKey = rsaPublicKey(await importedKey("kiln-win-", build));
    const encrypted = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(password)).toString("base64");
    proxy.inject("GetPasswordData", { answer: `<GetPasswordDataResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><instanceId>i-0</instanceId><timestamp>2026-01-01T00:00:00Z</timestamp><passwordData>${encrypted}</passwordData></GetPasswordDataResponse>` });
    const run = await build.done;
    assert.equal(run.code, 0, run.stdout + run.stderr);

    const launch = new URLSearchParams(proxy.bodies.get("RunInstances")?.at(-1) ?? "");
    const userData = Buffer.from(launch.get("UserData") ?? "", "base64").toString("utf8");
    assert.match(userData, /^<powershell>\n[\s\S]*Get-FileHash -Algorithm SHA256[\s\S]*<\/powershell>\n<runAsLocalSystem>true<\/runAsLocalSystem>\n$/, "EC2Launch v1's wrapper, with the pinned zip");
    const imported = Buffer.from(new URLSearchParams(proxy.bodies.get("ImportKeyPair")?.at(-1) ?? "").get("PublicKeyMaterial") ?? "", "base64").toString("utf8");
    assert.match(imported, /^ssh-rsa AAAA/, "RSA: EC2 encrypts Windows passwords with it");
    assert.match(run.stdout, /find source image: ami-\w+ \(Windows_Server-2016[^)]*\).*Windows Server 2016, ec2launch-v1/);
    assert.ok(run.stderr.includes(`Administrator password of i-`) && run.stderr.includes(password), "shown, as --show-password asks");
    assert.ok(!run.stdout.includes(password), "and in no progress output");
    assert.match(run.stdout, /communicator none: the instance cannot be generalized/);
    const images = (await ec2.send(new DescribeImagesCommand({ Owners: ["self"] }))).Images ?? [];
    assert.equal(images.length, 1);
    assert.ok(images[0]?.Tags?.some((t) => t.Key === "kiln:build-id"));
    assert.deepEqual(await leftovers(), []);
  });

  describe("over SSH", () => {
    let sshd: Sshd;
    let checkIp: ReturnType<typeof createServer>;
    const sshDir = join(dir, "sshd");
    const log = join(sshDir, "commands.log");
    const restarted = join(sshDir, "restart-requested");
    const exitOnce = join(sshDir, "exit-once");
    const config = (): string[] => [`ForceCommand ${join(sshDir, "stand-in.sh")}`];

    before(async () => {
      await mkdir(sshDir, { recursive: true });
      // Windows' OpenSSH as seen from kiln: every command is recorded, a restart is noticed,
      // and a one-shot exit code can be set.
      await writeFile(join(sshDir, "stand-in.sh"), [
        "#!/bin/sh",
        `printf '%s\\n' "$SSH_ORIGINAL_COMMAND" >> ${log}`,
        `case "$SSH_ORIGINAL_COMMAND" in shutdown*) touch ${restarted}; exit 0 ;; esac`,
        "echo ran-by-stand-in",
        `if [ -f ${exitOnce} ]; then code=$(cat ${exitOnce}); rm -f ${exitOnce}; echo 'it failed' >&2; exit "$code"; fi`,
        "exit 0",
        "",
      ].join("\n"));
      await chmod(join(sshDir, "stand-in.sh"), 0o755);
      sshd = await startSshd(sshDir, "", { extraConfig: config() });
      checkIp = createServer((_req, res) => res.end("198.51.100.7\n"));
      await new Promise<void>((resolve) => checkIp.listen(0, "127.0.0.1", resolve));
    });
    after(async () => {
      checkIp?.close();
      await sshd?.stop();
    });

    async function windowsOverSsh(name: string, provisioners: string): Promise<string> {
      return template(name, `${windows2016}${pinnedZip.replace("get_password: true", "get_password: false")}    ssh_username: root\n    ssh_host: 127.0.0.1\n    ssh_port: ${sshd.port}\n    ssh_timeout: 60\n    ssh_host_key_wait: 0.3\n    check_ip_url: http://127.0.0.1:${(checkIp.address() as { port: number }).port}/\nprovisioners:\n${provisioners}`);
    }

    /** Authorizes the build's key, and "reboots" Windows (sshd and its sessions down, then up) when asked. */
    async function serve(build: ReturnType<typeof startKiln>): Promise<void> {
      await writeFile(join(sshDir, "authorized_keys"), `${await importedKey("kiln-", build)}\n`);
      while (build.child.exitCode === null) {
        if (await stat(restarted).then(() => true, () => false)) {
          await unlink(restarted);
          const port = sshd.port;
          await sshd.stop();
          await new Promise((r) => setTimeout(r, 1500));
          sshd = await startSshd(sshDir, "", { port, extraConfig: config() });
          await writeFile(join(sshDir, "authorized_keys"), `${await importedKey("kiln-", build)}\n`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    const commands = async (): Promise<string[]> => (await readFile(log, "utf8").catch(() => "")).split("\n").filter(Boolean);
    const decoded = (command: string): string => decodeCommand(command.split(" ").at(-1) ?? "");

    it("sends what PowerShell would run, restarts Windows and waits for it, then generalizes", async () => {
      await rm(log, { force: true });
      const file = await windowsOverSsh("win-ssh", [
        "  - type: powershell",
        "    env: {GREETING: hello}",
        "    inline: ['Write-Output \"kiln was here: $env:GREETING\"', 'choco install -y git']",
        "  - type: windows-restart",
        "    restart_timeout: 60",
        "    restart_check_command: Get-Service sshd",
        "",
      ].join("\n"));
      const build = startKiln(["build", file, "--output-dir", join(dir, "out-win-ssh")], env);
      await serve(build);
      const run = await build.done;
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const sent = await commands();
      const powershell = sent.filter((c) => c.startsWith("powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "));
      const provisioner = decoded(powershell[0] ?? "");
      assert.match(provisioner, /^\$ErrorActionPreference = 'Stop'$/m);
      assert.match(provisioner, /^\$env:GREETING = 'hello'$/m);
      assert.match(provisioner, /^Write-Output "kiln was here: \$env:GREETING"\nchoco install -y git$/m);
      assert.match(provisioner, /^exit \$global:LASTEXITCODE$/m);
      assert.ok(sent.includes("shutdown /r /f /t 5 /c \"kiln: windows-restart\""), sent.join("\n"));
      assert.match(run.stdout, /SSH went away; waiting for it to come back/);
      assert.match(run.stdout, /back after the restart/);
      assert.match(decoded(powershell[1] ?? ""), /Get-Service sshd/, "the check command after the restart");
      const generalize = decoded(powershell.at(-1) ?? "");
      assert.match(generalize, /Enable-ScheduledTask -TaskName 'kiln first boot key'[\s\S]*InitializeInstance\.ps1' -Schedule[\s\S]*SysprepInstance\.ps1' -NoShutdown/);
      assert.doesNotMatch(run.stdout, /harden build instance|clean build instance/, "a Windows build has no Linux steps");
      assert.deepEqual(await leftovers(), []);
    });

    it("writes a long script to a file in pieces and runs it with -File", async () => {
      await rm(log, { force: true });
      // Not only ASCII: a character may fall across two pieces.
      const lines = Array.from({ length: 120 }, (_, i) => `Write-Output 'line ${i} of a long provisioning script — über lang, ✓ ${"é".repeat(i % 7)}'`);
      const build = startKiln(["build", await windowsOverSsh("win-long", `  - type: powershell\n    inline: ${JSON.stringify(lines)}\n`), "--output-dir", join(dir, "out-win-long")], env);
      await serve(build);
      const run = await build.done;
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const scripts = (await commands()).map(decoded);
      const pieces = scripts.filter((c) => c.startsWith("$b = [Convert]::FromBase64String("));
      assert.ok(pieces.length >= 2, `several pieces: ${pieces.length}`);
      const file = /Open\("([^"]+)", 'Append'\)/.exec(pieces[0] ?? "")?.[1] ?? "";
      assert.ok(pieces.every((p) => p.includes(`"${file}"`)), "all into one file");
      const bytes = Buffer.concat(pieces.map((p) => Buffer.from(/FromBase64String\('([^']+)'\)/.exec(p)?.[1] ?? "", "base64")));
      assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], "a UTF-8 byte-order mark first, for Windows PowerShell 5.1");
      const stored = bytes.subarray(3).toString("utf8");
      assert.ok(!stored.includes("\uFFFD"), "no character broken at a seam");
      assert.match(stored, /^\$ErrorActionPreference = 'Stop'$/m);
      assert.ok(lines.every((l) => stored.includes(l)), "the whole script, in order");
      const runner = scripts[scripts.indexOf(pieces.at(-1) ?? "") + 1] ?? "";
      assert.match(runner, /-ExecutionPolicy Bypass -File \$f/);
      assert.ok(runner.includes(file) && /Remove-Item -Force \$f/.test(runner), "run, then removed");
      assert.deepEqual(await leftovers(), []);
    });

    it("fails the build on a non-zero exit, unless valid_exit_codes accepts it", async () => {
      await writeFile(exitOnce, "3");
      const failing = startKiln(["build", await windowsOverSsh("win-fail", "  - type: powershell\n    inline: ['exit 3']\n"), "--output-dir", join(dir, "out-win-fail")], env);
      await serve(failing);
      const failed = await failing.done;
      assert.equal(failed.code, 1, failed.stdout + failed.stderr);
      assert.match(failed.stderr, /^error: provisioner 1 \(powershell\) failed: the script exited with code 3\n {2}last lines of stderr:\n {4}it failed$/m);
      assert.deepEqual(await leftovers(), []);

      await moto.reset();
      await writeFile(exitOnce, "3");
      const accepting = startKiln(["build", await windowsOverSsh("win-accept", "  - type: powershell\n    inline: ['exit 3']\n    valid_exit_codes: [0, 3]\n"), "--output-dir", join(dir, "out-win-accept")], env);
      await serve(accepting);
      const accepted = await accepting.done;
      assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
      assert.match(accepted.stdout, /exit code 3, which valid_exit_codes accepts/);
      assert.deepEqual(await leftovers(), []);
    });
  });
});
