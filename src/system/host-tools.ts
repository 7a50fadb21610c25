import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { KilnError } from "../errors.js";

/** A program kiln runs, and the Debian package that provides it. */
export interface HostTool {
  command: string;
  debianPackage: string;
  /** What kiln needs it for, shown when it is missing. */
  purpose: string;
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

/** Checks every tool before anything starts, and names all missing ones with their packages. */
export async function requireTools(tools: readonly HostTool[]): Promise<void> {
  const missing: HostTool[] = [];
  for (const tool of tools) if ((await findTool(tool.command)) === undefined) missing.push(tool);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((t) => t.debianPackage))].join(" ");
  const list = missing.map((t) => `${t.command} (${t.purpose}; package ${t.debianPackage})`).join(", ");
  throw new KilnError("KILN_TOOL_MISSING", `missing on this machine: ${list}`, { hint: `install with: apt-get install -y ${packages}` });
}
