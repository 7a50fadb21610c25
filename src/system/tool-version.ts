import { spawnSync } from "node:child_process";

/** The version a tool reports of itself (the first version-like word of its first line), for manifests. */
export function toolVersion(command: string, args: readonly string[]): string | undefined {
  const run = spawnSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const firstLine = `${run.stdout ?? ""}\n${run.stderr ?? ""}`.trim().split("\n")[0] ?? "";
  return /\d+\.\d+(\.\d+)?[\w.+~-]*/.exec(firstLine)?.[0];
}
