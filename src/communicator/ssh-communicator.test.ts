import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CommandError } from "../system/command-error.js";
import { startSshd, type Sshd } from "../../test/helpers/sshd.js";
import { RecordingReporter } from "../../test/helpers/recording-reporter.js";
import { ed25519OpenSshPrivateKey, ed25519PublicLine } from "./openssh-key.js";
import { SshCommunicator, type SshTarget } from "./ssh-communicator.js";

describe("SSH communicator (a real OpenSSH server on 127.0.0.1)", { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-ssh-"));
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  let sshd: Sshd;
  let target: SshTarget;
  const signal = new AbortController().signal;

  before(async () => {
    sshd = await startSshd(dir, `${ed25519PublicLine(publicKey, "kiln-test")}\n`);
    target = { host: "127.0.0.1", port: sshd.port, username: "root", privateKey: ed25519OpenSshPrivateKey(privateKey, "kiln-test"), timeoutSeconds: 10 };
  });
  after(async () => {
    await sshd?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("runs a script with its environment, streams its output, and pins or reports the host key", async () => {
    const report = new RecordingReporter();
    const ssh = await SshCommunicator.connect({ ...target, pinned: [sshd.fingerprint] }, { signal, report });
    try {
      assert.equal(ssh.hostKey, sshd.fingerprint);
      assert.match(report.lines.join("\n"), /matches the one the instance printed/);
      const out: string[] = [];
      await ssh.runScript("echo \"hello $GREETING\"\nread line || echo 'stdin is empty'\n", { what: "provisioner 1 (shell)", signal, env: { GREETING: "it's kiln" }, onStdoutLine: (l) => out.push(l) });
      assert.deepEqual(out, ["hello it's kiln", "stdin is empty"]);
    } finally {
      ssh.close();
    }
  });

  it("fails with the exit code and the last lines of stderr", async () => {
    const ssh = await SshCommunicator.connect(target, { signal, report: new RecordingReporter() });
    try {
      await assert.rejects(ssh.runScript("echo about to fail >&2\nexit 7\n", { what: "provisioner 2 (shell)", signal }), (error: unknown) => {
        assert.ok(error instanceof CommandError);
        assert.match(error.message, /provisioner 2 \(shell\) failed: the script exited with code 7/);
        assert.match(error.message, /about to fail/);
        return true;
      });
    } finally {
      ssh.close();
    }
  });

  it("uploads a file with a mode and a directory tree", async () => {
    const local = join(dir, "local");
    mkdirSync(join(local, "tree", "sub"), { recursive: true });
    writeFileSync(join(local, "app.conf"), "listen = 8080\n");
    writeFileSync(join(local, "tree", "sub", "two.txt"), "two\n");
    const ssh = await SshCommunicator.connect(target, { signal, report: new RecordingReporter() });
    try {
      await ssh.upload(join(local, "app.conf"), join(dir, "remote", "etc", "app.conf"), { what: "provisioner 3 (file)", signal, mode: "0640" });
      await ssh.upload(join(local, "tree"), `${join(dir, "remote", "opt")}/`, { what: "provisioner 4 (file)", signal });
    } finally {
      ssh.close();
    }
    assert.equal(await readFile(join(dir, "remote", "etc", "app.conf"), "utf8"), "listen = 8080\n");
    assert.equal((await stat(join(dir, "remote", "etc", "app.conf"))).mode & 0o777, 0o640);
    assert.equal(await readFile(join(dir, "remote", "opt", "tree", "sub", "two.txt"), "utf8"), "two\n");
  });

  it("runs a script by its own #! line, and by an execute_command with Packer's {{ .Vars }} or {{ .EnvVarFile }}", async () => {
    const ssh = await SshCommunicator.connect(target, { signal, report: new RecordingReporter() });
    try {
      const out: string[] = [];
      await ssh.runScript("#!/bin/bash\necho \"bash ${BASH_VERSINFO[0]}\"\n", { what: "provisioner 1 (shell)", signal, onStdoutLine: (l) => out.push(l) });
      assert.match(out[0] ?? "", /^bash \d+$/, "the script's own interpreter ran it");
      out.length = 0;
      const script = "echo \"$1 $GREETING from $0\"\nps -o args= -u root | grep -v grep | grep -c hunter2 || true\n";
      // The env file keeps values off every command line: no process but the greps shows "hunter2"
      // (counting grep's own line raced ps: under load ps sometimes ran before grep started).
      await ssh.runScript(script, { what: "provisioner 2 (shell)", signal, env: { GREETING: "it's kiln", PASSWORD: "hunter2" }, executeCommand: ". {{ .EnvVarFile }} && sh {{ .Path }} called", onStdoutLine: (l) => out.push(l) });
      assert.match(out[0] ?? "", /^called it's kiln from \/tmp\/kiln-script-[0-9a-f]{16}\/script$/);
      assert.equal(out[1], "0", "the value is on no command line");
      // {{ .Vars }}: NAME='value' words, quoted, as Packer writes them.
      out.length = 0;
      await ssh.runScript(script, { what: "provisioner 2 (shell)", signal, env: { GREETING: "it's kiln" }, executeCommand: "{{ .Vars }} sh {{ .Path }} vars", onStdoutLine: (l) => out.push(l) });
      assert.match(out[0] ?? "", /^vars it's kiln from /);
      await assert.rejects(ssh.runScript("exit 0\n", { what: "provisioner 3 (shell)", signal, executeCommand: "{{ .Vars }} false {{ .Path }}" }), /provisioner 3 \(shell\) failed: the script exited with code 1/);
    } finally {
      ssh.close();
    }
  });

  it("downloads a file and a directory tree, never leaving half of one", async () => {
    const remote = join(dir, "remote-dl");
    mkdirSync(join(remote, "logs", "app"), { recursive: true });
    writeFileSync(join(remote, "report.txt"), "all good\n");
    writeFileSync(join(remote, "logs", "app", "build.log"), "step 1\n");
    symlinkSync("/etc/shadow", join(remote, "logs", "shadow"));
    const local = join(dir, "downloads");
    const skipped: string[] = [];
    const ssh = await SshCommunicator.connect(target, { signal, report: new RecordingReporter() });
    try {
      await ssh.download(join(remote, "report.txt"), join(local, "renamed.txt"), { what: "provisioner 5 (file)", signal });
      // What kiln does not write (a link out of the copy) is said, as over a chroot.
      await ssh.download(join(remote, "logs"), `${local}/`, { what: "provisioner 6 (file)", signal, onSkipped: (path) => skipped.push(path) });
      assert.deepEqual(skipped.map((p) => p.replace(/^.*\/logs\//, "logs/")), ["logs/shadow"]);
      await assert.rejects(ssh.download(join(remote, "missing"), join(local, "missing"), { what: "provisioner 7 (file)", signal }), /provisioner 7 \(file\) failed: the download of .*missing exited with code 2/);
    } finally {
      ssh.close();
    }
    assert.equal(await readFile(join(local, "renamed.txt"), "utf8"), "all good\n");
    assert.equal(await readFile(join(local, "logs", "app", "build.log"), "utf8"), "step 1\n");
    assert.deepEqual((await readdir(local)).sort(), ["logs", "renamed.txt"], "no staging directory or partial file left");
  });

  it("refuses a host key other than the pinned one, at once", async () => {
    const started = Date.now();
    await assert.rejects(SshCommunicator.connect({ ...target, pinned: ["SHA256:notthekeytheinstanceprinted"] }, { signal, report: new RecordingReporter() }), /presented host key SHA256:.*not one the instance printed/);
    assert.ok(Date.now() - started < 5000, "a mismatch is not retried");
  });

  it("gives up after its timeout when nothing answers, saying what to check", async () => {
    await assert.rejects(SshCommunicator.connect({ ...target, port: 9, timeoutSeconds: 3 }, { signal, report: new RecordingReporter() }), /could not connect to root@127\.0\.0\.1:9 within 3s/);
  });
});
