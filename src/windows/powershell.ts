/** A PowerShell single-quoted string: nothing in it is expanded ('' is a quote). */
export function psQuote(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** PowerShell's -EncodedCommand form of a script: UTF-16LE, base64. */
export function encodeCommand(script: string): string {
  return Buffer.from(script, "utf16le").toString("base64");
}

export function decodeCommand(encoded: string): string {
  return Buffer.from(encoded, "base64").toString("utf16le");
}

/** The command line that runs a script on Windows, whatever the SSH server's default shell is. */
export function powershellCommand(script: string): string {
  return `powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ${encodeCommand(script)}`;
}

/**
 * A provisioner's script as kiln runs it: errors stop it ($ErrorActionPreference = 'Stop'), its
 * environment is set first, and its exit code is the script's `exit`, else the last native
 * command's $LASTEXITCODE, else 1 for an uncaught error, else 0.
 */
export function provisionerScript(script: string, env: Readonly<Record<string, string>>): string {
  return [
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    ...Object.entries(env).map(([name, value]) => `$env:${name} = ${psQuote(value)}`),
    "$global:LASTEXITCODE = 0",
    "try {",
    "  . {",
    script.replace(/\r?\n$/, ""),
    "  }",
    "} catch {",
    "  [Console]::Error.WriteLine(($_ | Out-String).Trim())",
    "  exit 1",
    "}",
    "exit $global:LASTEXITCODE",
    "",
  ].join("\n");
}
