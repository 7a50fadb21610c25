import { rules, type Rule } from "../../rules.js";
import { baseName, fileFinding, smallFile, type FileRule } from "./file-rule.js";
import type { Finding } from "../../finding.js";

/** Private SSH host keys: every instance of the image would share them (AWS makes such images private). */
export const sshHostKeys: FileRule = {
  wants: (entry) => (entry.type === "file" && entry.size > 0 && /^\/etc\/ssh\/ssh_host_\w+_key$/.test(entry.path) ? 0 : undefined),
  visit: (entry) => [fileFinding(rules.sshHostKey, entry.path, `${baseName(entry.path)} would be shared by every instance`)],
};

/** A machine-id must be empty (or "uninitialized") so each instance makes its own. */
export const machineId: FileRule = {
  wants: (entry) => (entry.type === "file" && (entry.path === "/etc/machine-id" || entry.path === "/var/lib/dbus/machine-id") ? smallFile : undefined),
  visit: (entry, content = "") => {
    const id = content.trim();
    return id === "" || id === "uninitialized" ? [] : [fileFinding(rules.machineId, entry.path, "machine-id is set: every instance would share it")];
  },
};

/** Counts what lies under a directory and reports it once, naming the first few entries. */
function leftoversUnder(directories: readonly string[], rule: Rule, what: string): FileRule {
  const found = new Map<string, string[]>();
  const owner = (path: string): string | undefined => directories.find((d) => path.startsWith(`${d}/`));
  return {
    wants: (entry) => (owner(entry.path) === undefined ? undefined : 0),
    visit: (entry) => {
      const dir = owner(entry.path) ?? "";
      found.set(dir, [...(found.get(dir) ?? []), entry.path]);
      return [];
    },
    finish: () => [...found].map(([dir, paths]): Finding => fileFinding(rule, dir, `${what}: ${paths.length} entr${paths.length === 1 ? "y" : "ies"}`, {
      excerpt: paths.slice(0, 3).join(", ") + (paths.length > 3 ? ", …" : ""),
    })),
  };
}

export const temporaryFiles = (): FileRule => leftoversUnder(["/tmp", "/var/tmp"], rules.temporaryFiles, "left in a temporary directory");
export const cloudInitState = (): FileRule => leftoversUnder(["/var/lib/cloud/instances"], rules.cloudInitState, "cloud-init state of the build instance");
