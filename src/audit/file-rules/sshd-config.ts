import { rules, type Rule } from "../rules.js";
import { fileFinding, smallFile, type FileRule } from "./file-rule.js";
import type { Finding } from "../finding.js";

interface Setting { value: string; path: string; line: number; inMatch: boolean; text: string }

const main = "/etc/ssh/sshd_config";
const dropIns = /^\/etc\/ssh\/sshd_config\.d\/[^/]+$/;
const checked: { keyword: string; bad: (v: string) => boolean; rule: Rule }[] = [
  { keyword: "permitrootlogin", bad: (v) => v === "yes", rule: rules.sshdRootLogin },
  { keyword: "passwordauthentication", bad: (v) => v === "yes", rule: rules.sshdPasswordAuthentication },
  { keyword: "permitemptypasswords", bad: (v) => v === "yes", rule: rules.sshdEmptyPasswords },
];

/**
 * sshd's effective settings: the first value given wins, Include pulls drop-ins in where it
 * stands, and a Match block applies to some connections (a `yes` there still counts).
 */
export function sshdConfig(): FileRule {
  const files = new Map<string, string>();
  return {
    wants: (entry) => (entry.type === "file" && (entry.path === main || dropIns.test(entry.path)) ? smallFile : undefined),
    visit: (entry, content = "") => {
      files.set(entry.path, content);
      return [];
    },
    finish: () => {
      if (!files.has(main)) return [];
      const settings = new Map<string, Setting[]>();
      collect(main, files, settings, new Set());
      const findings: Finding[] = [];
      for (const { keyword, bad, rule } of checked) {
        const all = settings.get(keyword) ?? [];
        const effective = all.find((s) => !s.inMatch);
        const offending = [...(effective !== undefined && bad(effective.value) ? [effective] : []), ...all.filter((s) => s.inMatch && bad(s.value))];
        for (const s of offending) {
          findings.push(fileFinding(rule, s.path, `${s.text}${s.inMatch ? " (inside a Match block)" : ""}`, { line: s.line }));
        }
        if (keyword === "passwordauthentication" && effective === undefined) {
          findings.push(fileFinding(rules.sshdPasswordDefault, main, "PasswordAuthentication is not set"));
        }
      }
      return findings;
    },
  };
}

function collect(path: string, files: Map<string, string>, settings: Map<string, Setting[]>, seen: Set<string>): void {
  if (seen.has(path)) return;
  seen.add(path);
  let inMatch = false;
  for (const [i, raw] of (files.get(path) ?? "").split("\n").entries()) {
    const m = /^\s*(\w+)(?:\s*=\s*|\s+)(.*?)\s*$/.exec(raw);
    if (m === null || raw.trimStart().startsWith("#")) continue;
    const keyword = (m[1] ?? "").toLowerCase();
    const value = (m[2] ?? "").toLowerCase();
    if (keyword === "match") inMatch = value !== "all";
    else if (keyword === "include") {
      for (const pattern of value.split(/\s+/)) {
        const absolute = pattern.startsWith("/") ? pattern : `/etc/ssh/${pattern}`;
        for (const included of [...files.keys()].filter((f) => globMatches(absolute, f)).sort()) collect(included, files, settings, seen);
      }
    } else settings.set(keyword, [...(settings.get(keyword) ?? []), { value, path, line: i + 1, inMatch, text: raw.trim() }]);
  }
}

function globMatches(pattern: string, path: string): boolean {
  const regex = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*")}$`, "i");
  return regex.test(path);
}
