import { privateDecrypt, constants, type KeyObject } from "node:crypto";
import { KilnError } from "../errors.js";
import { firstBootTaskName } from "./bootstrap.js";
import type { LaunchAgent } from "./launch-agent.js";
import { psQuote } from "./powershell.js";

/**
 * Each launch agent's sysprep as kiln runs it, and whether it shuts Windows down by itself.
 * EC2Launch v1 (-NoShutdown) and v2 (no --shutdown) leave the instance running for kiln to stop;
 * EC2Config's -sysprep always shuts down (its BundleConfig runs sysprep with /shutdown).
 */
const sysprep: Record<LaunchAgent, { commands: string[]; shutsDown: boolean }> = {
  "ec2launch-v1": {
    shutsDown: false,
    commands: [
      "powershell.exe -NoProfile -ExecutionPolicy Bypass -File 'C:\\ProgramData\\Amazon\\EC2-Windows\\Launch\\Scripts\\InitializeInstance.ps1' -Schedule",
      "if ($LASTEXITCODE -ne 0) { throw 'kiln: InitializeInstance.ps1 -Schedule failed' }",
      "powershell.exe -NoProfile -ExecutionPolicy Bypass -File 'C:\\ProgramData\\Amazon\\EC2-Windows\\Launch\\Scripts\\SysprepInstance.ps1' -NoShutdown",
      "if ($LASTEXITCODE -ne 0) { throw 'kiln: SysprepInstance.ps1 -NoShutdown failed' }",
    ],
  },
  "ec2launch-v2": {
    shutsDown: false,
    commands: [
      "$ec2launch = Join-Path $env:ProgramFiles 'Amazon\\EC2Launch\\EC2Launch.exe'",
      ". $ec2launch reset -c --block",
      "if ($LASTEXITCODE -ne 0) { throw 'kiln: ec2launch reset failed' }",
      ". $ec2launch sysprep --clean --block",
      "if ($LASTEXITCODE -ne 0) { throw 'kiln: ec2launch sysprep failed' }",
    ],
  },
  ec2config: {
    shutsDown: true,
    commands: [
      "$ec2config = Join-Path $env:ProgramFiles 'Amazon\\Ec2ConfigService\\ec2config.exe'",
      ". $ec2config -sysprep",
      "if ($LASTEXITCODE -ne 0) { throw 'kiln: ec2config -sysprep failed' }",
    ],
  },
};

/** Whether the agent's sysprep, as kiln runs it, shuts the instance down (and drops the connection). */
export function sysprepShutsDown(agent: LaunchAgent): boolean {
  return sysprep[agent].shutsDown;
}

/**
 * The line the generalize script prints just before the agent's sysprep: a connection lost after
 * it is sysprep's shutdown; one lost before it is a failure.
 */
export const sysprepStartingLine = "kiln: sysprep starting";

/**
 * The last thing that runs on a Windows build instance (seed 000's prepare-image, generated):
 * every authorized_keys and the host keys go, PowerShell histories are cleared, the first-boot
 * key task is armed again, then the launch agent schedules its first-boot work and sysprep
 * generalizes Windows (shutting it down only with EC2Config; else kiln stops the instance).
 */
export function generalizeScript(agent: LaunchAgent, { armFirstBootTask = true } = {}): string {
  return [
    "# kiln: generalize this instance before it is imaged",
    "$ssh = Join-Path $env:ProgramData 'ssh'",
    "Remove-Item -Force -ErrorAction SilentlyContinue (Join-Path $ssh 'administrators_authorized_keys'), (Join-Path $ssh 'authorized_keys')",
    "Get-ChildItem -Path $ssh -Filter 'ssh_host_*' -ErrorAction SilentlyContinue | Remove-Item -Force",
    "Get-ChildItem -Path 'C:\\Users' -Directory | ForEach-Object {",
    "  Remove-Item -Force -ErrorAction SilentlyContinue (Join-Path $_.FullName '.ssh\\authorized_keys')",
    "  Remove-Item -Force -ErrorAction SilentlyContinue (Join-Path $_.FullName 'AppData\\Roaming\\Microsoft\\Windows\\PowerShell\\PSReadLine\\ConsoleHost_history.txt')",
    "}",
    "Write-Output 'removed authorized_keys, host keys and PowerShell histories'",
    ...(armFirstBootTask ? [`Enable-ScheduledTask -TaskName ${psQuote(firstBootTaskName)} | Out-Null`, "Write-Output 'armed the first-boot key task'"] : []),
    `Write-Output ${psQuote(sysprepStartingLine)}`,
    ...sysprep[agent].commands,
    `Write-Output 'generalized (${agent})'`,
    "",
  ].join("\n");
}

/**
 * The Administrator password from GetPasswordData: RSA PKCS#1 v1.5 with the key pair's
 * public key. Node 20 refuses PKCS#1 v1.5 padding for private decryption (CVE-2023-46809),
 * so the padding is checked and removed here after a raw RSA decryption.
 */
export function decryptPasswordData(passwordData: string, privateKey: KeyObject): string {
  const encrypted = Buffer.from(passwordData.trim(), "base64");
  let block: Buffer;
  try {
    block = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, encrypted);
  } catch (error) {
    // Another key's ciphertext may be larger than this key's modulus: the same answer as bad padding.
    throw new KilnError("KILN_PASSWORD_DATA", `the password data is not PKCS#1 v1.5 encrypted for the build's key (${error instanceof Error ? error.message : String(error)})`);
  }
  // 0x00 0x02, at least 8 non-zero padding bytes, 0x00, the message.
  const end = block.indexOf(0, 2);
  if (block[0] !== 0 || block[1] !== 2 || end < 10) {
    throw new KilnError("KILN_PASSWORD_DATA", "the password data is not PKCS#1 v1.5 encrypted for the build's key");
  }
  return block.subarray(end + 1).toString("utf8");
}
