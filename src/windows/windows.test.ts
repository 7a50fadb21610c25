import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { constants, generateKeyPairSync, publicEncrypt } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse } from "yaml";
import { rsaPublicLine } from "../communicator/openssh-key.js";
import { KilnError } from "../errors.js";
import { bootstrapScript, firstBootKeyScript, windowsSshdConfig, windowsUserData } from "./bootstrap.js";
import { decryptPasswordData, generalizeScript, sysprepStartingLine } from "./generalize.js";
import { windowsTarget, type WindowsTarget } from "./launch-agent.js";
import { decodeCommand, encodeCommand, powershellCommand, provisionerScript } from "./powershell.js";

const dir = mkdtempSync(join(tmpdir(), "kiln-windows-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const sha256 = "a".repeat(64);
const auto = { version: "auto", launch_agent: "auto", openssh_version: "v9.5.0.0p1-Beta", generalize: true, get_password: false, password_timeout: 900 } as const;

/** The text of each element of `<root>…</root>`, by a real XML parser (Python's, which moto's Python carries). */
function xmlElements(document: string): Record<string, string> {
  const script = "import sys, json, xml.etree.ElementTree as ET\nroot = ET.fromstring(sys.stdin.read())\nprint(json.dumps({e.tag: e.text for e in root}))";
  return JSON.parse(execFileSync("python3", ["-c", script], { input: `<root>${document}</root>`, encoding: "utf8" })) as Record<string, string>;
}

describe("Windows: the launch agent and version of a source image", () => {
  it("reads them from AWS's image names, and takes the template's word over them", () => {
    assert.deepEqual(windowsTarget(auto, "Windows_Server-2016-English-Full-Base-2017.10.13"), { version: "2016", agent: "ec2launch-v1" });
    assert.deepEqual(windowsTarget(auto, "Windows_Server-2019-English-Full-Base-2024.01.10"), { version: "2019", agent: "ec2launch-v1" });
    assert.deepEqual(windowsTarget(auto, "EC2LaunchV2-Windows_Server-2019-English-Full-Base-2024.01.10"), { version: "2019", agent: "ec2launch-v2" });
    assert.deepEqual(windowsTarget(auto, "Windows_Server-2022-English-Full-Base-2024.01.10"), { version: "2022", agent: "ec2launch-v2" });
    assert.deepEqual(windowsTarget(auto, "Windows_Server-2012-R2_RTM-English-64Bit-Base-2023.01.11"), { version: "2012", agent: "ec2config" });
    assert.deepEqual(windowsTarget({ ...auto, version: "2019", launch_agent: "ec2launch-v2" }, "my-golden-image"), { version: "2019", agent: "ec2launch-v2" });
    assert.throws(() => windowsTarget(auto, "my-golden-image"), (e: unknown) => e instanceof KilnError && /set windows\.version/.test(e.hint ?? ""));
  });
});

describe("Windows: the user data kiln writes", () => {
  const cases: { target: WindowsTarget; wrapper: "xml" | "yaml" }[] = [
    { target: { version: "2012", agent: "ec2config" }, wrapper: "xml" },
    { target: { version: "2016", agent: "ec2launch-v1" }, wrapper: "xml" },
    { target: { version: "2019", agent: "ec2launch-v1" }, wrapper: "xml" },
    { target: { version: "2019", agent: "ec2launch-v2" }, wrapper: "yaml" },
    { target: { version: "2022", agent: "ec2launch-v2" }, wrapper: "yaml" },
  ];
  for (const { target, wrapper } of cases) {
    it(`parses in its wrapper and carries every piece: Server ${target.version}, ${target.agent}`, () => {
      const options = { target, opensshVersion: "v9.5.0.0p1-Beta", opensshSha256: sha256 };
      const userData = windowsUserData(options);
      const script = bootstrapScript(options);
      if (wrapper === "xml") {
        const elements = xmlElements(userData);
        assert.equal(elements.powershell, `\n${script}`, "the script is the <powershell> element's text, unchanged");
        assert.equal(elements.runAsLocalSystem, "true");
      } else {
        const document = parse(userData) as { version: string; tasks: { task: string; inputs?: { type: string; runAs: string; frequency: string; content: string }[] }[] };
        assert.equal(document.version, "1.1");
        assert.deepEqual(document.tasks.map((t) => t.task), ["enableOpenSsh", "executeScript"], "EC2Launch v2's own OpenSSH task first");
        const input = document.tasks[1]?.inputs?.[0];
        assert.deepEqual({ type: input?.type, runAs: input?.runAs, frequency: input?.frequency }, { type: "powershell", runAs: "localSystem", frequency: "once" });
        assert.equal(input?.content, script);
      }
      const zip = target.version === "2012" || target.version === "2016";
      assert.equal(script.includes("Add-WindowsCapability -Online -Name 'OpenSSH.Server~~~~0.0.1.0'"), !zip);
      if (zip) {
        for (const piece of ["SecurityProtocolType]::Tls12", "System.Net.WebClient", "releases/download/v9.5.0.0p1-Beta/OpenSSH-Win64.zip", "Get-FileHash -Algorithm SHA256", `'${sha256.toUpperCase()}'`, "refused", "install-sshd.ps1"]) assert.ok(script.includes(piece), piece);
      }
      for (const piece of [
        "New-NetFirewallRule -Name 'kiln-sshd'", "-LocalPort 22 -Program", "sshd.exe", "-Name DefaultShell -Value 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe'",
        "PasswordAuthentication no", "administrators_authorized_keys", "'S-1-5-32-544', 'S-1-5-18'", "SetAccessRuleProtection($true, $false)",
        "$put.Method = 'PUT'", "X-aws-ec2-metadata-token-ttl-seconds", "X-aws-ec2-metadata-token'", "Start-Sleep -Seconds 2",
        "-----BEGIN SSH HOST KEY FINGERPRINTS-----", "Restart-Service sshd", "Register-ScheduledTask -TaskName 'kiln first boot key'", "Disable-ScheduledTask",
      ]) assert.ok(script.includes(piece), piece);
      assert.doesNotMatch(script, /Invoke-WebRequest/, ".NET requests, which work under LocalSystem");
      assert.doesNotMatch(script, /[<&]/, "nothing a <powershell> element would misread");
    });
  }

  it("bakes in a first-boot task that fetches each instance's key, prints its host keys and turns itself off", () => {
    const task = firstBootKeyScript("C:\\Windows\\System32\\OpenSSH");
    for (const piece of ["Get-Metadata 'public-keys/0/openssh-key'", "Set-AdministratorsKey", "-----BEGIN SSH HOST KEY FINGERPRINTS-----", "Disable-ScheduledTask -TaskName 'kiln first boot key'"]) assert.ok(task.includes(piece), piece);
  });

  it("writes an sshd_config that a real OpenSSH sshd -t accepts", () => {
    const config = join(dir, "sshd_config");
    writeFileSync(config, windowsSshdConfig);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
    execFileSync("mkdir", ["-p", "/run/sshd"]);
    // Windows' sftp-server.exe and __PROGRAMDATA__ are only names to a Linux sshd; -t checks the grammar.
    execFileSync("/usr/sbin/sshd", ["-t", "-f", config, "-h", join(dir, "host_key")], { stdio: "pipe" });
    const effective = execFileSync("/usr/sbin/sshd", ["-T", "-f", config, "-h", join(dir, "host_key"), "-C", "user=Administrator,host=x,addr=192.0.2.1"], { encoding: "utf8" });
    assert.match(effective, /^passwordauthentication no$/m);
    assert.match(effective, /^pubkeyauthentication yes$/m);
  });
});

describe("Windows: PowerShell as kiln runs it", () => {
  it("round-trips a script through -EncodedCommand (UTF-16LE base64)", () => {
    const script = "Write-Output 'héllo wörld ✓'\n$x = 1 + 2\n";
    assert.equal(decodeCommand(encodeCommand(script)), script);
    const command = powershellCommand(script);
    assert.match(command, /^powershell\.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand [A-Za-z0-9+/]+=*$/);
    assert.equal(decodeCommand(command.split(" ").at(-1) ?? ""), script);
  });

  it("wraps a provisioner's script: stop on errors, its env, its exit code", () => {
    const wrapped = provisionerScript("Write-Output $env:GREETING\nnet.exe user\n", { GREETING: "it's kiln" });
    assert.match(wrapped, /^\$ErrorActionPreference = 'Stop'$/m);
    assert.match(wrapped, /^\$env:GREETING = 'it''s kiln'$/m, "a single quote doubled, nothing expanded");
    assert.match(wrapped, /Write-Output \$env:GREETING\nnet\.exe user\n/);
    assert.match(wrapped, /^exit \$global:LASTEXITCODE$/m, "a native command's exit code is the script's");
  });
});

describe("Windows: generalizing, and the Administrator password", () => {
  it("uses each launch agent's own sysprep, after removing keys and re-arming the first-boot task", () => {
    assert.match(generalizeScript("ec2launch-v1"), /InitializeInstance\.ps1' -Schedule[\s\S]*SysprepInstance\.ps1' -NoShutdown/);
    assert.match(generalizeScript("ec2launch-v2"), /reset -c --block[\s\S]*sysprep --clean --block/);
    assert.match(generalizeScript("ec2config"), /ec2config -sysprep/);
    for (const agent of ["ec2launch-v1", "ec2launch-v2", "ec2config"] as const) {
      const script = generalizeScript(agent);
      assert.ok(script.indexOf("administrators_authorized_keys") < script.indexOf("Enable-ScheduledTask"), "keys out before the task is armed");
      assert.match(script, /ssh_host_\*/);
      assert.match(script, /ConsoleHost_history\.txt/);
      assert.match(script, /Enable-ScheduledTask -TaskName 'kiln first boot key'/);
      // A connection lost after this line is sysprep's shutdown (EC2Config), before it a failure.
      const starting = script.indexOf(`Write-Output '${sysprepStartingLine}'`);
      assert.ok(starting > script.indexOf("Enable-ScheduledTask"), "said after the keys and the task");
      assert.ok(starting < script.search(/InitializeInstance|EC2Launch\.exe|ec2config\.exe/), "said before the agent's first command");
    }
  });

  it("decrypts GetPasswordData with the build's RSA key (PKCS#1 v1.5), and refuses another key's", () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const data = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from("Kiln-Pa$$w0rd!")).toString("base64");
    assert.equal(decryptPasswordData(data, privateKey), "Kiln-Pa$$w0rd!");
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    assert.throws(() => decryptPasswordData(data, other), /not PKCS#1 v1\.5 encrypted for the build's key/);
  });

  it("writes an RSA public key as ssh-keygen reads it", () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(join(dir, "rsa.pub"), `${rsaPublicLine(publicKey, "kiln-test")}\n`);
    writeFileSync(join(dir, "rsa"), privateKey.export({ type: "pkcs1", format: "pem" }), { mode: 0o600 });
    const fromLine = execFileSync("ssh-keygen", ["-l", "-f", join(dir, "rsa.pub")], { encoding: "utf8" }).split(" ")[1];
    writeFileSync(join(dir, "derived.pub"), execFileSync("ssh-keygen", ["-y", "-f", join(dir, "rsa")]));
    assert.equal(fromLine, execFileSync("ssh-keygen", ["-l", "-f", join(dir, "derived.pub")], { encoding: "utf8" }).split(" ")[1]);
  });
});
