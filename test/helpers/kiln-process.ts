import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The repository root, from dist/test/helpers/. */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
export const kilnBin = `${repoRoot}bin/kiln.js`;

export interface KilnRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts the real CLI as its own process. */
export function startKiln(args: readonly string[], env: NodeJS.ProcessEnv = {}, wrapper: readonly string[] = []): { child: ChildProcess; done: Promise<KilnRun>; stdout: () => string } {
  // The tests decide the build's epoch themselves; the caller's SOURCE_DATE_EPOCH would change it.
  const { SOURCE_DATE_EPOCH: _ignored, ...inherited } = process.env;
  const [file, ...rest] = [...wrapper, process.execPath, kilnBin, ...args];
  const child = spawn(file as string, rest, { cwd: repoRoot, env: { ...inherited, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => { stdout += d; });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
  const done = new Promise<KilnRun>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return { child, done, stdout: () => stdout };
}

/** `wrapper`: a command that execs kiln (e.g. to start it in a particular keyring). */
export function runKiln(args: readonly string[], env: NodeJS.ProcessEnv = {}, wrapper: readonly string[] = []): Promise<KilnRun> {
  return startKiln(args, env, wrapper).done;
}
