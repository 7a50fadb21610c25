import { setTimeout as sleep } from "node:timers/promises";
import { CancelledError, KilnError } from "../errors.js";
import { CommandError } from "../system/command-error.js";
import type { Reporter } from "../report/reporter.js";
import { powershellCommand, psQuote } from "../windows/powershell.js";
import type { Communicator, RunScriptOptions } from "./communicator.js";
import { SshCommunicator, type SshTarget } from "./ssh-communicator.js";

/**
 * The script's channel closed with no exit status: the connection went away while the script
 * ran (Windows shut down, the network dropped). Still a CommandError, so whoever handled one
 * before still does; a caller that expects Windows to go down can tell it apart.
 */
export class ConnectionLostError extends CommandError {
  constructor(what: string, stderrTail: readonly string[]) {
    super(what, "the script", null, null, stderrTail, "Windows went down or the network dropped: look at the instance's console output (aws ec2 get-console-output), then build again");
    this.name = "ConnectionLostError";
    const tail = stderrTail.length === 0 ? "" : `\n  last lines of stderr:\n${stderrTail.map((l) => `    ${l}`).join("\n")}`;
    this.message = `${what} failed: the connection closed while the script ran, before it reported an exit status${tail}`;
  }
}

/** What a failed run of the script itself means: ssh2 closes a dropped connection's channel with no exit code at all (undefined, not null). */
export function scriptRunError(error: unknown, what: string): unknown {
  if (!(error instanceof CommandError) || error instanceof ConnectionLostError) return error;
  const code = error.commandExitCode as number | null | undefined;
  return code === undefined ? new ConnectionLostError(what, error.stderrTail) : error;
}

/** Windows' command-line limit is 32,767 characters; -EncodedCommand doubles and then some. */
const encodedLimit = 8000;

/**
 * Runs PowerShell on a Windows build instance over OpenSSH. A script goes as one
 * `powershell.exe -ExecutionPolicy Bypass -EncodedCommand` (UTF-16LE base64) when it is short,
 * else it is written to a file in %TEMP% piece by piece and run with `-File`. Either way the
 * server's default shell (cmd or PowerShell) does not matter.
 */
export class WindowsCommunicator implements Communicator {
  private constructor(private ssh: SshCommunicator, private readonly target: SshTarget) {}

  static async connect(target: SshTarget, context: { signal: AbortSignal; report: Reporter }): Promise<WindowsCommunicator> {
    return new WindowsCommunicator(await SshCommunicator.connect(target, context), target);
  }

  get description(): string {
    return `${this.ssh.description} (PowerShell)`;
  }

  get hostKey(): string {
    return this.ssh.hostKey;
  }

  async runScript(script: string, options: RunScriptOptions): Promise<void> {
    const command = powershellCommand(script);
    const lost = (error: unknown): never => { throw scriptRunError(error, options.what); };
    if (command.length <= encodedLimit) {
      await this.ssh.runCommand(command, options, "the script").catch(lost);
      return;
    }
    const file = `$env:TEMP\\kiln-${Date.now().toString(36)}.ps1`;
    // Bytes, cut anywhere (a character split across two pieces is whole again in the file), after
    // a UTF-8 byte-order mark: without one, Windows PowerShell 5.1 reads a -File script as ANSI.
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(script, "utf8")]);
    for (let at = 0; at < bytes.length; at += 3000) {
      const piece = bytes.subarray(at, at + 3000).toString("base64");
      const append = `$b = [Convert]::FromBase64String(${psQuote(piece)}); $f = [System.IO.File]::Open("${file}", 'Append'); $f.Write($b, 0, $b.Length); $f.Close()`;
      await this.ssh.runCommand(powershellCommand(append), { ...options, onStdoutLine: () => undefined }, "storing the script");
    }
    const run = `$f = "${file}"; try { powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File $f; $code = $LASTEXITCODE } finally { Remove-Item -Force $f }; exit $code`;
    await this.ssh.runCommand(powershellCommand(run), options, "the script").catch(lost);
  }

  upload(): Promise<void> {
    return Promise.reject(new KilnError("KILN_WINDOWS_UPLOAD", "copying files to a Windows instance is not supported yet", { hint: "fetch files in a powershell provisioner instead" }));
  }

  download(): Promise<void> {
    return Promise.reject(new KilnError("KILN_WINDOWS_DOWNLOAD", "copying files from a Windows instance is not supported yet"));
  }

  close(): void {
    this.ssh.close();
  }

  /**
   * Restarts Windows and waits, within `timeoutSeconds`, for SSH to go away and to come back;
   * then `checkCommand` (PowerShell) must succeed. The host key must still be the pinned one.
   */
  async restart(restartCommand: string, timeoutSeconds: number, checkCommand: string | undefined, context: { signal: AbortSignal; report: Reporter; what: string }): Promise<void> {
    const { signal, report, what } = context;
    const deadline = Date.now() + timeoutSeconds * 1000;
    // The restart command may lose its connection as Windows goes down: that is success.
    await this.ssh.runCommand(restartCommand, { what, signal }, "the restart command").catch((error: unknown) => {
      if (this.ssh.open) throw error;
    });
    report.info(`${what}: restart requested; waiting for SSH to go away`);
    while (this.ssh.open) {
      if (signal.aborted) throw new CancelledError();
      if (Date.now() > deadline) throw new KilnError("KILN_RESTART_TIMEOUT", `${what}: Windows did not go down within ${timeoutSeconds}s`, { hint: "check restart_command, or raise restart_timeout" });
      await sleep(500, undefined, { signal }).catch(() => undefined);
    }
    this.ssh.close();
    report.info(`${what}: SSH went away; waiting for it to come back`);
    const remaining = Math.max(1, Math.round((deadline - Date.now()) / 1000));
    this.ssh = await SshCommunicator.connect({ ...this.target, pinned: [this.ssh.hostKey], timeoutSeconds: remaining }, { signal, report }).catch((error: unknown) => {
      if (error instanceof KilnError && error.code === "KILN_SSH_TIMEOUT") {
        throw new KilnError("KILN_RESTART_TIMEOUT", `${what}: SSH did not come back within ${timeoutSeconds}s of the restart`, { hint: "raise restart_timeout, or look at the instance's console output" });
      }
      throw error;
    });
    // As Packer does: the check is run until it succeeds (services come up after SSH), within the timeout.
    while (checkCommand !== undefined) {
      try {
        await this.runScript(checkCommand, { what: `${what} (restart_check_command)`, signal, onStdoutLine: (l) => report.output(what, l), onStderrLine: (l) => report.output(what, l) });
        break;
      } catch (error) {
        if (signal.aborted || !(error instanceof CommandError) || Date.now() > deadline) throw error;
        await sleep(5000, undefined, { signal }).catch(() => undefined);
      }
    }
    report.info(`${what}: back after the restart`);
  }
}
