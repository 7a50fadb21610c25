import { rules } from "../../rules.js";
import { baseName, fileFinding, type FileRule } from "./file-rule.js";

const names = new Set([
  ".bash_history", ".zsh_history", ".zhistory", ".sh_history", ".ash_history", ".history", ".histfile",
  ".python_history", ".mysql_history", ".psql_history", ".sqlite_history", ".node_repl_history",
  ".lesshst", ".viminfo", ".rediscli_history", ".irb_history", ".wget-hsts", "consolehost_history.txt",
]);

/** Histories of every user and REPL: a command typed while building may carry a password. */
export const shellHistories: FileRule = {
  wants: (entry) => {
    const name = baseName(entry.path).toLowerCase();
    const history = names.has(name) || entry.path.endsWith("/.local/share/fish/fish_history");
    return entry.type === "file" && entry.size > 0 && history ? 0 : undefined;
  },
  // Never quote a history: its lines are exactly what must not be printed.
  visit: (entry) => [fileFinding(rules.shellHistory, entry.path, `history file of ${entry.size} bytes`)],
};
