import { rules } from "../../rules.js";
import { fileFinding, smallFile, type FileRule } from "./file-rule.js";

/** /etc/shadow: every account's password must be locked ('!' or '*'), never set or empty. */
export const shadowPasswords: FileRule = {
  wants: (entry) => (entry.path === "/etc/shadow" && entry.type === "file" ? smallFile : undefined),
  visit: (entry, content = "") => content.split("\n").flatMap((text, i) => {
    const [user, hash] = text.split(":");
    if (user === undefined || user === "" || hash === undefined) return [];
    const where = { line: i + 1 };
    if (hash === "") return [fileFinding(rules.emptyPassword, entry.path, `${user} has an empty password`, { ...where, excerpt: `${user}::…` })];
    if (hash.startsWith("!") || hash.startsWith("*")) return [];
    const scheme = /^\$([\w]+)\$/.exec(hash)?.[1];
    return [fileFinding(rules.passwordHash, entry.path, `${user} has a password${scheme === undefined ? "" : ` (hash $${scheme}$)`}`, { ...where, excerpt: `${user}:****:…` })];
  }),
};
