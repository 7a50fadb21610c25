import { stringify } from "yaml";
import { hasOpenSshCapability, type WindowsTarget } from "./launch-agent.js";
import { psQuote } from "./powershell.js";

/**
 * What kiln writes onto a Windows build instance so it can be reached over OpenSSH (seed
 * 000/001, done once here instead of by hand in every template). The PowerShell avoids `<`
 * and `&` so that EC2Launch v1 / EC2Config, which take the script as the text of a
 * `<powershell>` element, read it as written.
 */

/** Key-only sshd for Windows; administrators' keys live in ProgramData, as Win32-OpenSSH wants. */
export const windowsSshdConfig = `# written by kiln
Port 22
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
AuthorizedKeysFile .ssh/authorized_keys
Subsystem sftp sftp-server.exe
Match Group administrators
       AuthorizedKeysFile __PROGRAMDATA__/ssh/administrators_authorized_keys
`;

export const firstBootTaskName = "kiln first boot key";
const programData = "$env:ProgramData";

/** Functions both scripts share: metadata over IMDSv2 (.NET requests, retried), keys, console. */
const helpers = String.raw`
function Get-Metadata([string] $Path) {
  $token = $null
  for ($i = 0; $i -lt 90; $i++) {
    try {
      $put = [System.Net.WebRequest]::Create('http://169.254.169.254/latest/api/token')
      $put.Method = 'PUT'
      $put.ContentLength = 0
      $put.Headers.Add('X-aws-ec2-metadata-token-ttl-seconds', '300')
      $token = (New-Object System.IO.StreamReader $put.GetResponse().GetResponseStream()).ReadToEnd()
      break
    } catch { Start-Sleep -Seconds 2 }
  }
  if (-not $token) { throw 'kiln: no IMDSv2 token from the metadata service' }
  $get = [System.Net.WebRequest]::Create("http://169.254.169.254/latest/meta-data/$Path")
  $get.Headers.Add('X-aws-ec2-metadata-token', $token)
  (New-Object System.IO.StreamReader $get.GetResponse().GetResponseStream()).ReadToEnd()
}
function Write-Console([string[]] $Lines) {
  $Lines | ForEach-Object { Write-Host $_ }
  try {
    $port = New-Object System.IO.Ports.SerialPort 'COM1', 115200
    $port.Open()
    $Lines | ForEach-Object { $port.WriteLine($_) }
    $port.Close()
  } catch { }
}
function Set-AdministratorsKey([string] $Key) {
  $dir = Join-Path ${programData} 'ssh'
  New-Item -ItemType Directory -Force -Path $dir | Out-Null
  $file = Join-Path $dir 'administrators_authorized_keys'
  [System.IO.File]::WriteAllText($file, $Key.Trim() + [char]10, (New-Object System.Text.UTF8Encoding $false))
  # Administrators and SYSTEM only, by SID, so non-English images work too.
  $acl = New-Object System.Security.AccessControl.FileSecurity
  $acl.SetAccessRuleProtection($true, $false)
  foreach ($sid in 'S-1-5-32-544', 'S-1-5-18') {
    $who = New-Object System.Security.Principal.SecurityIdentifier $sid
    $acl.AddAccessRule((New-Object System.Security.AccessControl.FileSystemAccessRule $who, 'FullControl', 'Allow'))
  }
  Set-Acl -Path $file -AclObject $acl
}
function Write-HostKeys([string] $KeyGen) {
  $keys = Get-ChildItem (Join-Path ${programData} 'ssh') -Filter 'ssh_host_*_key.pub'
  $lines = @('-----BEGIN SSH HOST KEY FINGERPRINTS-----')
  foreach ($key in $keys) { $lines += (. $KeyGen -l -f $key.FullName) }
  $lines += '-----END SSH HOST KEY FINGERPRINTS-----'
  Write-Console $lines
}
`;

/** The scheduled task baked into the image: each new instance's key, its host keys printed, then off. */
export function firstBootKeyScript(openSshDirectory: string): string {
  return `${helpers}
$ErrorActionPreference = 'Stop'
Set-AdministratorsKey (Get-Metadata 'public-keys/0/openssh-key')
Start-Service sshd
for ($i = 0; $i -lt 30; $i++) { if (Get-ChildItem (Join-Path ${programData} 'ssh') -Filter 'ssh_host_*_key.pub') { break }; Start-Sleep -Seconds 1 }
Write-HostKeys (Join-Path ${psQuote(openSshDirectory)} 'ssh-keygen.exe')
Disable-ScheduledTask -TaskName ${psQuote(firstBootTaskName)} | Out-Null
`;
}

export interface BootstrapOptions {
  target: WindowsTarget;
  opensshVersion: string;
  /** Required where OpenSSH comes as the release zip (Server 2016 and older). */
  opensshSha256?: string;
}

/** The user-data script: OpenSSH up with kiln's config and this instance's key, fingerprints printed. */
export function bootstrapScript({ target, opensshVersion, opensshSha256 }: BootstrapOptions): string {
  const capability = hasOpenSshCapability(target.version);
  const openSsh = capability ? "C:\\Windows\\System32\\OpenSSH" : "C:\\Program Files\\OpenSSH";
  const release = opensshVersion.startsWith("v") ? opensshVersion : `v${opensshVersion}`;
  const install = capability
    ? [
      "# Server 2019 and later: OpenSSH is a Windows capability",
      "if (-not (Get-Service sshd -ErrorAction SilentlyContinue)) { Add-WindowsCapability -Online -Name 'OpenSSH.Server~~~~0.0.1.0' | Out-Null }",
    ]
    : [
      "# Server 2016: the Win32-OpenSSH release, pinned by version and SHA-256",
      "[System.Net.ServicePointManager]::SecurityProtocol = [System.Net.SecurityProtocolType]::Tls12",
      `$zip = Join-Path $env:TEMP 'OpenSSH-Win64.zip'`,
      `(New-Object System.Net.WebClient).DownloadFile(${psQuote(`https://github.com/PowerShell/Win32-OpenSSH/releases/download/${release}/OpenSSH-Win64.zip`)}, $zip)`,
      `$expected = ${psQuote((opensshSha256 ?? "").toUpperCase())}`,
      "$actual = (Get-FileHash -Algorithm SHA256 -Path $zip).Hash",
      "if ($actual -ne $expected) { Remove-Item $zip; throw \"kiln: OpenSSH-Win64.zip has SHA-256 $actual, not $expected: refused\" }",
      "Add-Type -AssemblyName System.IO.Compression.FileSystem",
      "[System.IO.Compression.ZipFile]::ExtractToDirectory($zip, $env:TEMP)",
      `Move-Item -Path (Join-Path $env:TEMP 'OpenSSH-Win64') -Destination ${psQuote(openSsh)} -Force`,
      `powershell.exe -NoProfile -ExecutionPolicy Bypass -File (Join-Path ${psQuote(openSsh)} 'install-sshd.ps1')`,
      "if ($LASTEXITCODE -ne 0) { throw 'kiln: install-sshd.ps1 failed' }",
    ];
  return `${helpers}
$ErrorActionPreference = 'Stop'
${install.join("\n")}
# The firewall opens for sshd only.
if (-not (Get-NetFirewallRule -Name 'kiln-sshd' -ErrorAction SilentlyContinue)) {
  New-NetFirewallRule -Name 'kiln-sshd' -DisplayName 'OpenSSH Server (kiln)' -Enabled True -Direction Inbound -Protocol TCP -LocalPort 22 -Program ${psQuote(`${openSsh}\\sshd.exe`)} -Action Allow | Out-Null
}
Set-Service sshd -StartupType Automatic
# The first start writes sshd's defaults and host keys; kiln's config replaces the defaults after it.
Start-Service sshd
New-Item -Path 'HKLM:\\SOFTWARE\\OpenSSH' -Force | Out-Null
New-ItemProperty -Path 'HKLM:\\SOFTWARE\\OpenSSH' -Name DefaultShell -Value 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe' -PropertyType String -Force | Out-Null
[System.IO.File]::WriteAllText((Join-Path ${programData} 'ssh\\sshd_config'), ${psQuote(windowsSshdConfig)}, (New-Object System.Text.UTF8Encoding $false))
Set-AdministratorsKey (Get-Metadata 'public-keys/0/openssh-key')
Restart-Service sshd
Write-HostKeys (Join-Path ${psQuote(openSsh)} 'ssh-keygen.exe')
# The first-boot task each instance of the image runs (armed again by kiln's generalize step).
$taskScript = Join-Path ${programData} 'kiln\\first-boot-key.ps1'
New-Item -ItemType Directory -Force -Path (Split-Path $taskScript) | Out-Null
[System.IO.File]::WriteAllText($taskScript, ${psQuote(firstBootKeyScript(openSsh))})
$action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument "-NoProfile -ExecutionPolicy Bypass -File \`"$taskScript\`""
$principal = New-ScheduledTaskPrincipal -UserId 'S-1-5-18' -LogonType ServiceAccount -RunLevel Highest
Register-ScheduledTask -TaskName ${psQuote(firstBootTaskName)} -Action $action -Principal $principal -Trigger (New-ScheduledTaskTrigger -AtStartup) -Force | Out-Null
Disable-ScheduledTask -TaskName ${psQuote(firstBootTaskName)} | Out-Null
`;
}

/**
 * The user data, in the form the image's launch agent reads: EC2Launch v1 and EC2Config take a
 * `<powershell>` element (run as LocalSystem, as the seed found necessary); EC2Launch v2 takes
 * YAML tasks, with its own `enableOpenSsh` task first where OpenSSH is a capability.
 */
export function windowsUserData(options: BootstrapOptions): string {
  const script = bootstrapScript(options);
  if (options.target.agent !== "ec2launch-v2") {
    return `<powershell>\n${script}</powershell>\n<runAsLocalSystem>true</runAsLocalSystem>\n`;
  }
  const tasks: object[] = [
    ...(hasOpenSshCapability(options.target.version) ? [{ task: "enableOpenSsh" }] : []),
    { task: "executeScript", inputs: [{ frequency: "once", type: "powershell", runAs: "localSystem", content: script }] },
  ];
  return stringify({ version: "1.1", tasks }, { lineWidth: 0 });
}
