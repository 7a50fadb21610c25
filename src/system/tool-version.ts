import { execFile } from "node:child_process";

/** The version a tool reports of itself (the first version-like word of its first line), for manifests. */
export function toolVersion(command: string, args: readonly string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(command, args, { encoding: "utf8", timeout: 30_000 }, (_error, stdout, stderr) => {
      const firstLine = `${stdout}\n${stderr}`.trim().split("\n")[0] ?? "";
      resolve(/\d+\.\d+(\.\d+)?[\w.+~-]*/.exec(firstLine)?.[0]);
    });
  });
}

/**
 * Asks each tool for its version at once, in the background (mmdebstrap, a Perl program, takes
 * 0.4 s to say it): a build starts this early and its manifest awaits the answers.
 */
export function startToolVersions(tools: Readonly<Record<string, readonly [string, ...string[]]>>): () => Promise<Record<string, string | undefined>> {
  const pending = Object.entries(tools).map(async ([name, [command, ...args]]) => [name, await toolVersion(command, args)] as const);
  const all = Promise.all(pending).then((entries) => Object.fromEntries(entries));
  return () => all;
}
