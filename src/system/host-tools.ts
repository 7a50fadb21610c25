import { execFile } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { KilnError } from "../errors.js";

/** A program kiln runs, and the Debian package that provides it. */
export interface HostTool {
  command: string;
  debianPackage: string;
  /** What kiln needs it for, shown when it is missing. */
  purpose: string;
  /** An option kiln passes that older versions lack (looked for in its --help), and the first version with it. */
  option?: { name: string; since: string };
}

// sbin directories are searched too: a non-root PATH often lacks them, yet mke2fs lives there.
const extraDirectories = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

export async function findTool(command: string, path = process.env.PATH ?? ""): Promise<string | undefined> {
  for (const dir of [...path.split(delimiter).filter(Boolean), ...extraDirectories]) {
    const candidate = join(dir, command);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Checks every tool before anything starts, and names all missing (or too old) ones with their packages. */
export async function requireTools(tools: readonly HostTool[]): Promise<void> {
  const missing: HostTool[] = [];
  const old: string[] = [];
  for (const tool of tools) {
    const found = await findTool(tool.command);
    if (found === undefined) missing.push(tool);
    else if (tool.option !== undefined && !(await knowsOption(found, tool.option.name))) old.push(`${found} has no ${tool.option.name} (${tool.purpose}; ${tool.option.since} or later)`);
  }
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((t) => t.debianPackage))].join(" ");
    const list = missing.map((t) => `${t.command} (${t.purpose}; package ${t.debianPackage})`).join(", ");
    throw new KilnError("KILN_TOOL_MISSING", `missing on this machine: ${list}`, { hint: `install with: apt-get install -y ${packages}` });
  }
  if (old.length > 0) {
    throw new KilnError("KILN_TOOL_TOO_OLD", `too old on this machine: ${old.join(", ")}`, {
      hint: "upgrade them (util-linux 2.38 is in Debian 12 and Ubuntu 24.04; Ubuntu 22.04 has 2.37), or build on such a machine or in a container of one",
    });
  }
}

/** Whether a program's --help names `option` (util-linux tools list every option there). */
function knowsOption(program: string, option: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(program, ["--help"], { timeout: 10_000, env: { ...process.env, LC_ALL: "C" } }, (_error, stdout) => resolve(String(stdout).includes(option)));
  });
}
