/** One value of a keyword in sshd's configuration, where it was given. */
export interface SshdSetting {
  value: string;
  path: string;
  line: number;
  text: string;
  /**
   * global: outside Match; all: a top-level `Match all` block (sshd applies it even before it
   * knows the connection); every: another block that matches every connection; some: any other.
   */
  scope: "global" | "all" | "every" | "some";
}

/** A value some connection may get: a setting, or OpenSSH's default (undefined) when nothing sets it. */
export type PossibleValue = SshdSetting | undefined;

/** The keywords that decide whether sshd is key-only, with OpenSSH's defaults. */
export const keyOnlyDefaults = {
  permitrootlogin: "prohibit-password",
  passwordauthentication: "yes",
  kbdinteractiveauthentication: "yes",
  permitemptypasswords: "no",
} as const;
export type KeyOnlyKeyword = keyof typeof keyOnlyDefaults;
export const keyOnlyKeywords = Object.keys(keyOnlyDefaults) as KeyOnlyKeyword[];
const aliases: Record<string, string> = { challengeresponseauthentication: "kbdinteractiveauthentication" };

/** `yes` is the one value of each of these keywords that lets a password (or none) in. */
export function notKeyOnly(value: string): boolean {
  return value.toLowerCase() === "yes";
}

/**
 * Every value each key-only keyword may take for some connection, as sshd resolves it: outside
 * Match the first value wins; the first value in a matching Match block overrides that. Any
 * Match block is taken to match some connection, so its values all count, up to the first
 * block that matches every connection (after which nothing else can be reached).
 * `files` maps absolute paths in the image to their content; Include resolves among them.
 */
export function sshdPossibleValues(files: ReadonlyMap<string, string>, main = "/etc/ssh/sshd_config"): Map<KeyOnlyKeyword, PossibleValue[]> {
  const settings: SshdSetting[] = [];
  collect(main, files, settings, "global", []);
  const result = new Map<KeyOnlyKeyword, PossibleValue[]>();
  for (const keyword of keyOnlyKeywords) {
    const mine = settings.filter((s) => keywordOf(s.text) === keyword);
    const possible: PossibleValue[] = [];
    let everyConnection = false;
    for (const s of mine.filter((m) => m.scope !== "global")) {
      possible.push(s);
      if (s.scope !== "some") { everyConnection = true; break; }
    }
    if (!everyConnection) possible.push(mine.find((s) => s.scope === "global" || s.scope === "all"));
    result.set(keyword, possible);
  }
  return result;
}

function keywordOf(text: string): string {
  const word = (words(text)[0] ?? "").toLowerCase();
  return aliases[word] ?? word;
}

/**
 * `start` is the block the file begins in: an Include inside a Match block brings its file into
 * that block, and a Match in that file then applies only where both do (so: to some connections).
 */
function collect(path: string, files: ReadonlyMap<string, string>, out: SshdSetting[], start: SshdSetting["scope"], stack: string[]): void {
  if (stack.includes(path) || stack.length > 16) return;
  let block = start;
  for (const [i, raw] of (files.get(path) ?? "").split("\n").entries()) {
    const args = words(raw);
    const keyword = (args[0] ?? "").toLowerCase();
    if (keyword === "") continue;
    if (keyword === "match") {
      const own = matchScope(args.slice(1));
      block = start === "some" ? "some" : start === "every" && own === "all" ? "every" : own;
    } else if (keyword === "include") {
      for (const pattern of args.slice(1)) {
        const absolute = pattern.startsWith("/") ? pattern : `/etc/ssh/${pattern}`;
        for (const included of [...files.keys()].filter((f) => globMatches(absolute, f)).sort()) {
          collect(included, files, out, block, [...stack, path]);
        }
      }
    } else if (args.length > 1) {
      out.push({ value: (args[1] ?? "").toLowerCase(), path, line: i + 1, text: raw.trim(), scope: block });
    }
  }
}

function matchScope(criteria: string[]): SshdSetting["scope"] {
  if (criteria.length === 1 && criteria[0]?.toLowerCase() === "all") return "all";
  return appliesToEvery(criteria) ? "every" : "some";
}

/** Criteria whose every pattern is `*` for what every connection has. */
function appliesToEvery(criteria: string[]): boolean {
  if (criteria.length === 0 || criteria.length % 2 !== 0) return false;
  for (let i = 0; i < criteria.length; i += 2) {
    if (!["user", "host", "address"].includes(criteria[i]?.toLowerCase() ?? "") || criteria[i + 1] !== "*") return false;
  }
  return true;
}

/** A line split as sshd splits it: `keyword value`, `keyword=value`, quotes, a `#` word ends it. */
export function words(line: string): string[] {
  // sshd drops a CR before the newline, and takes a quoted keyword as the keyword.
  const m = /^\s*("[^"]*"|[^\s=]+)(?:\s*=\s*|\s+|$)(.*)$/.exec(line.replace(/\r$/, ""));
  if (m === null || (m[1] ?? "").startsWith("#")) return [];
  const out = [(m[1] ?? "").replace(/^"(.*)"$/, "$1")];
  for (const w of (m[2] ?? "").matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) {
    if (w[3]?.startsWith("#") === true) break;
    out.push(w[1] ?? w[2] ?? w[3] ?? "");
  }
  return out;
}

function globMatches(pattern: string, path: string): boolean {
  const regex = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*")}$`);
  return regex.test(path);
}
