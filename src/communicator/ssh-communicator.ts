import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { basename, dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import ssh2 from "ssh2";
import { CancelledError, KilnError } from "../errors.js";
import type { Reporter } from "../report/reporter.js";
import { CommandError } from "../system/command-error.js";
import { shellQuote as quote } from "../system/shell-quote.js";
import type { Communicator, DownloadOptions, RunScriptOptions, UploadOptions } from "./communicator.js";
import { receiveTree } from "./download.js";
import { envFileText, fillExecuteCommand, inlineVars } from "./execute-command.js";
import { sshFingerprint } from "./openssh-key.js";

const { Client } = ssh2;
type Connection = InstanceType<typeof Client>;

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** OpenSSH-format private key, in memory. */
  privateKey: string;
  /** Host key fingerprints (SHA256:…) the target printed on its console: any other is refused. */
  pinned?: readonly string[];
  timeoutSeconds: number;
}

/** Runs provisioners on a build instance over SSH, as root (through `sudo -n` for other users). */
export class SshCommunicator implements Communicator {
  readonly description: string;

  private closed = false;

  private constructor(private readonly connection: Connection, private readonly target: SshTarget, readonly hostKey: string) {
    this.description = `ssh ${target.username}@${target.host}:${target.port}`;
    connection.on("close", () => { this.closed = true; });
  }

  /**
   * Connects, retrying until the target's timeout: a booting instance refuses connections, and
   * may not have the key in place yet. A host key that differs from a pinned one is never retried.
   */
  static async connect(target: SshTarget, { signal, report }: { signal: AbortSignal; report: Reporter }): Promise<SshCommunicator> {
    const deadline = Date.now() + target.timeoutSeconds * 1000;
    let last = "";
    for (;;) {
      if (signal.aborted) throw new CancelledError();
      try {
        const { connection, fingerprint } = await attempt(target, signal);
        report.info(target.pinned !== undefined && target.pinned.length > 0
          ? `host key ${fingerprint} matches the one the instance printed`
          : `host key ${fingerprint} accepted on first use (no fingerprints were printed to pin)`);
        return new SshCommunicator(connection, target, fingerprint);
      } catch (error) {
        if (error instanceof KilnError || signal.aborted) throw signal.aborted ? new CancelledError() : error;
        last = error instanceof Error ? error.message : String(error);
      }
      if (Date.now() >= deadline) {
        throw new KilnError("KILN_SSH_TIMEOUT", `could not connect to ${target.username}@${target.host}:${target.port} within ${target.timeoutSeconds}s (last: ${last})`, {
          hint: "check that the security group lets this machine in, the instance has a public IP (or set ssh_host), and ssh_username is right for the image",
        });
      }
      await sleep(2000, undefined, { signal }).catch(() => undefined);
    }
  }

  /**
   * Stores the script (and, apart, its environment) in a private directory of the instance's
   * /tmp, then runs it: as root by default, else by the template's execute_command. By default
   * the environment travels in a 0600 file, never on a command line others could read in `ps`
   * (an execute_command with `{{ .Vars }}` puts it there, as Packer does);
   * the directory is named so that the clean step, emptying /tmp, leaves it alone. kiln's
   * session is not interactive and keeps no shell history (HISTFILE unset makes sure).
   */
  async runScript(script: string, options: RunScriptOptions): Promise<void> {
    const directory = `/tmp/kiln-script-${randomBytes(8).toString("hex")}`;
    const [path, envFile] = [`${directory}/script`, `${directory}/env`];
    const body = script.startsWith("#!") ? script : `#!${options.interpreter ?? "/bin/sh -e"}\n${script}`;
    const env = options.env ?? {};
    const hasEnv = Object.keys(env).length > 0 || options.executeCommand?.includes("EnvVarFile") === true;
    const quiet = { ...options, onStdoutLine: () => undefined };
    // mkdir fails when the name exists: nothing planted there beforehand is ever used.
    await this.exec(`unset HISTFILE; umask 077; mkdir ${directory} && cat > ${path} && chmod 700 ${path}`, Buffer.from(body), quiet, "storing the script");
    if (hasEnv) await this.exec(`umask 077; cat > ${envFile}`, Buffer.from(envFileText(env)), quiet, "storing the script's environment");
    const run = options.executeCommand !== undefined
      ? fillExecuteCommand(options.executeCommand, { path, vars: inlineVars(env), envFile })
      : `${this.sudo()}sh -c ${quote(`${hasEnv ? `. ${envFile}; ` : ""}exec ${path}`)}`;
    await this.exec(`unset HISTFILE; ${run} </dev/null; s=$?; rm -rf ${directory}; exit $s`, Buffer.alloc(0), options, "the script");
  }

  async download(targetPath: string, localPath: string, options: DownloadOptions): Promise<void> {
    const send = `${this.sudo()}tar -C ${quote(dirname(targetPath))} -cf - ${quote(basename(targetPath))}`;
    await receiveTree(basename(targetPath), localPath, options.what, (tarInput) => this.exec(send, Buffer.alloc(0), { what: options.what, signal: options.signal, stdout: tarInput }, `the download of ${targetPath}`), options.onSkipped);
  }

  async upload(localPath: string, targetPath: string, options: UploadOptions): Promise<void> {
    const into = targetPath.endsWith("/");
    const name = basename(localPath);
    const destination = into ? `${targetPath}${name}` : targetPath;
    const fix = [
      options.mode === undefined ? "" : `chmod ${options.mode} ${quote(destination)}`,
      options.owner === undefined ? "" : `chown -R ${quote(options.owner)} ${quote(destination)}`,
    ].filter(Boolean).join("; ");
    const remote = `set -e; d=$(mktemp -d); tar -C "$d" -xf -; mkdir -p ${quote(dirname(destination))}; rm -rf ${quote(destination)}; mv "$d"/${quote(name)} ${quote(destination)}; rmdir "$d"${fix === "" ? "" : `; ${fix}`}`;
    // Started only once the channel is open: a child's output not read before it exits is lost.
    const tar = (): NodeJS.ReadableStream => spawn("tar", ["-C", dirname(localPath), "-cf", "-", name], { stdio: ["ignore", "pipe", "inherit"] }).stdout;
    await this.exec(`${this.sudo()}sh -c ${quote(remote)}`, tar, { ...options, onStdoutLine: () => undefined }, `the upload to ${destination}`);
  }

  close(): void {
    this.connection.end();
  }

  /** One command as the server's login shell runs it, nothing on stdin; rejects with CommandError on a non-zero exit. */
  runCommand(command: string, options: Pick<RunScriptOptions, "what" | "signal" | "onStdoutLine" | "onStderrLine">, display = "the command"): Promise<void> {
    return this.exec(command, Buffer.alloc(0), options, display);
  }

  /** Whether the connection still carries commands (false once the server went away). */
  get open(): boolean {
    return !this.closed;
  }

  private sudo(): string {
    return this.target.username === "root" ? "" : "sudo -n ";
  }

  private exec(command: string, input: Buffer | (() => NodeJS.ReadableStream), options: Pick<RunScriptOptions, "what" | "signal" | "onStdoutLine" | "onStderrLine"> & { stdout?: NodeJS.WritableStream }, display: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.connection.exec(command, (error, channel) => {
        if (error !== undefined && error !== null) return reject(new KilnError("KILN_SSH_EXEC", `${options.what}: ${error.message}`));
        const tail: string[] = [];
        const lines = (each: ((line: string) => void) | undefined, keep: boolean) => {
          let partial = "";
          return (data: Buffer): void => {
            const split = (partial + data.toString("utf8")).split("\n");
            partial = split.pop() ?? "";
            for (const line of split) {
              each?.(line);
              if (keep) { tail.push(line); if (tail.length > 20) tail.shift(); }
            }
          };
        };
        if (options.stdout !== undefined) channel.pipe(options.stdout, { end: false });
        else channel.on("data", lines(options.onStdoutLine, false));
        channel.stderr.on("data", lines(options.onStderrLine, true));
        const abort = (): void => { channel.close(); };
        options.signal.addEventListener("abort", abort, { once: true });
        channel.on("close", (code: number | null, signalName?: string) => {
          options.signal.removeEventListener("abort", abort);
          if (options.signal.aborted) return reject(new CancelledError());
          if (code === 0) return resolve();
          reject(new CommandError(options.what, display, code, (signalName ?? null) as NodeJS.Signals | null, tail));
        });
        if (Buffer.isBuffer(input)) channel.end(input);
        else void feed(input(), channel).catch(reject);
      });
    });
  }
}

/** Writes a stream into a channel with backpressure, then ends the channel's stdin. */
async function feed(input: NodeJS.ReadableStream, channel: NodeJS.WritableStream): Promise<void> {
  for await (const chunk of input) {
    if (!channel.write(chunk)) await new Promise((resolve) => channel.once("drain", resolve));
  }
  channel.end();
}

function attempt(target: SshTarget, signal: AbortSignal): Promise<{ connection: Connection; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const connection = new Client();
    let fingerprint = "";
    let mismatch: KilnError | undefined;
    const abort = (): void => { connection.end(); };
    signal.addEventListener("abort", abort, { once: true });
    connection.on("ready", () => { signal.removeEventListener("abort", abort); resolve({ connection, fingerprint }); });
    connection.on("error", (error) => { signal.removeEventListener("abort", abort); connection.end(); reject(mismatch ?? error); });
    connection.connect({
      host: target.host, port: target.port, username: target.username, privateKey: target.privateKey, readyTimeout: 20_000,
      // A server that reboots or vanishes is noticed within ~15 s, not at the next command.
      keepaliveInterval: 5000, keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        fingerprint = sshFingerprint(key);
        if (target.pinned === undefined || target.pinned.length === 0 || target.pinned.includes(fingerprint)) return true;
        mismatch = new KilnError("KILN_SSH_HOST_KEY_MISMATCH", `${target.host}:${target.port} presented host key ${fingerprint}, not one the instance printed (${target.pinned.join(", ")})`, {
          hint: "something between this machine and the instance is answering for it: do not go on; check the network path",
        });
        return false;
      },
    });
  });
}
