import { spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { CancelledError } from "../errors.js";
import { CommandError } from "./command-error.js";

export interface ExecOptions {
  /** What this command does, for the error message ("mke2fs", "provisioner 2 (shell)"). */
  what: string;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Stream fed to the command's stdin; stdin is closed at once otherwise. */
  stdin?: Readable | string | Buffer;
  /** Stream the command's stdout goes to, instead of being collected as lines. */
  stdout?: Writable;
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
  /** How many trailing stderr lines a failure reports. */
  tailLines?: number;
  hint?: string;
  /** How the command is named in a failure, instead of its full argv (e.g. "the script"). */
  display?: string;
  /** Open file descriptors handed to the command as its fds 3, 4, …. */
  extraFds?: readonly number[];
  /** How long a cancelled command may take to clean up after SIGTERM before SIGKILL. */
  killGraceMs?: number;
}

export interface ExecResult {
  stdout: string;
  stderrTail: string[];
}

const collectLimit = 4 * 1024 * 1024;

/**
 * Runs a command without a shell. On abort the process group gets SIGTERM, then SIGKILL after
 * two seconds, and the promise rejects with CancelledError once the process has exited, so
 * that cleanup never races a process still writing into the tree.
 */
export function exec(file: string, args: readonly string[], options: ExecOptions): Promise<ExecResult> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(new CancelledError());
  const tailLines = options.tailLines ?? 20;
  const child = spawn(file, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: [options.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe", ...(options.extraFds ?? [])],
    detached: true,
  });
  const stderrTail: string[] = [];
  let stdout = "";
  const onLine = (stream: Readable, each: (line: string) => void): Promise<void> => {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) each(line);
    });
    return new Promise((resolve) => stream.on("close", () => { if (partial !== "") each(partial); resolve(); }));
  };
  const stderrDone = onLine(child.stderr as Readable, (line) => {
    stderrTail.push(line);
    if (stderrTail.length > tailLines) stderrTail.shift();
    options.onStderrLine?.(line);
  });
  const into = options.stdout;
  const stdoutDone = into !== undefined
    ? new Promise<void>((resolve) => {
      // pipe() keeps backpressure; the destination stays open (the caller ends it) and its own
      // failure (a consumer that exited) shows as this command's failure, not a crash.
      into.on("error", () => child.stdout?.destroy());
      (child.stdout as Readable).pipe(into, { end: false });
      (child.stdout as Readable).on("close", resolve);
    })
    : onLine(child.stdout as Readable, (line) => {
      if (stdout.length < collectLimit) stdout += line + "\n";
      options.onStdoutLine?.(line);
    });
  if (options.stdin !== undefined && child.stdin !== null) {
    const input = options.stdin;
    child.stdin.on("error", () => { /* the command may exit without reading all of it */ });
    if (typeof input === "string" || Buffer.isBuffer(input)) child.stdin.end(input);
    else input.pipe(child.stdin);
  }

  let killTimer: NodeJS.Timeout | undefined;
  const kill = (): void => {
    signalGroup(child.pid, "SIGTERM");
    killTimer = setTimeout(() => signalGroup(child.pid, "SIGKILL"), options.killGraceMs ?? 2000);
    killTimer.unref();
  };
  signal?.addEventListener("abort", kill, { once: true });

  return new Promise((resolve, reject) => {
    child.on("error", (error) => {
      signal?.removeEventListener("abort", kill);
      reject(new CommandError(options.what, file, null, null, [error.message], options.hint));
    });
    child.on("close", (code, exitSignal) => {
      void Promise.all([stderrDone, stdoutDone]).then(() => {
        signal?.removeEventListener("abort", kill);
        if (killTimer !== undefined) clearTimeout(killTimer);
        if (signal?.aborted) return reject(new CancelledError());
        if (code === 0) return resolve({ stdout, stderrTail });
        reject(new CommandError(options.what, options.display ?? [file, ...args].map(quoteForDisplay).join(" "), code, exitSignal, stderrTail, options.hint));
      });
    });
  });
}

function signalGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try { process.kill(-pid, sig); } catch { /* already gone */ }
}

function quoteForDisplay(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}
