import { ImagePaths } from "./image-paths.js";

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
// servconf.c (OpenSSH 8.7 and later) reads both old names as KbdInteractiveAuthentication.
const aliases: Record<string, string> = { challengeresponseauthentication: "kbdinteractiveauthentication", skeyauthentication: "kbdinteractiveauthentication" };

/** `yes` is the one value of each of these keywords that lets a password (or none) in. */
export function notKeyOnly(value: string): boolean {
  return value.toLowerCase() === "yes";
}

/**
 * Every value each key-only keyword may take for some connection, as sshd resolves it: outside
 * Match the first value wins; the first value in a matching Match block overrides that. Any
 * Match block is taken to match some connection, so its values all count, up to the first
 * block that matches every connection (after which nothing else can be reached).
 * `files` maps absolute paths in the image to their content, `links` its symlinks to their
 * targets; Include and the main file resolve among them, inside the image.
 */
export function sshdPossibleValues(files: ReadonlyMap<string, string>, main = "/etc/ssh/sshd_config", links: ReadonlyMap<string, string> = new Map()): Map<KeyOnlyKeyword, PossibleValue[]> {
  return sshdConfiguration(new ImagePaths(files, links), main).possible;
}

/** What sshd reads and the audit could not: a main file or an Include it has no content for. */
export interface UnreadConfiguration {
  /** The file (as sshd names it) holding the Include, or the main file itself. */
  path: string;
  line?: number;
  /** The Include pattern or link, and where it leads in the image. */
  what: string;
}

export interface SshdConfiguration {
  possible: Map<KeyOnlyKeyword, PossibleValue[]>;
  /** Values UsePAM may take (OpenSSH's default: no). */
  usePam: PossibleValue[];
  unread: UnreadConfiguration[];
}

/**
 * sshd's configuration read from the image. `readable` says which resolved paths the caller
 * kept the content of: an Include leading elsewhere (or a link to there) is `unread`.
 */
export function sshdConfiguration(paths: ImagePaths, main = "/etc/ssh/sshd_config", readable: (path: string) => boolean = () => true): SshdConfiguration {
  const settings: SshdSetting[] = [];
  const unread: UnreadConfiguration[] = [];
  const real = paths.resolve(main);
  if (real === undefined || !readable(real)) unread.push({ path: main, what: `${main} -> ${real ?? "a symlink loop"}` });
  collect(main, { paths, readable, unread }, settings, "global", []);
  const possible = new Map<KeyOnlyKeyword, PossibleValue[]>();
  for (const keyword of keyOnlyKeywords) possible.set(keyword, possibleOf(settings, keyword));
  return { possible, usePam: possibleOf(settings, "usepam"), unread };
}

function possibleOf(settings: SshdSetting[], keyword: string): PossibleValue[] {
  const mine = settings.filter((s) => keywordOf(s.text) === keyword);
  const possible: PossibleValue[] = [];
  for (const s of mine.filter((m) => m.scope !== "global")) {
    possible.push(s);
    if (s.scope !== "some") return possible;
  }
  possible.push(mine.find((s) => s.scope === "global" || s.scope === "all"));
  return possible;
}

interface Reader {
  paths: ImagePaths;
  readable: (path: string) => boolean;
  unread: UnreadConfiguration[];
}

function keywordOf(text: string): string {
  const word = (words(text)[0] ?? "").toLowerCase();
  return aliases[word] ?? word;
}

/**
 * `start` is the block the file begins in: an Include inside a Match block brings its file into
 * that block, and a Match in that file then applies only where both do (so: to some connections).
 */
function collect(path: string, reader: Reader, out: SshdSetting[], start: SshdSetting["scope"], stack: string[]): void {
  if (stack.includes(path) || stack.length > 16) return;
  let block = start;
  // Findings point at the file that holds the line, through any link.
  const real = reader.paths.resolve(path) ?? path;
  for (const [i, raw] of (reader.paths.content(path) ?? "").split("\n").entries()) {
    const args = words(raw);
    const keyword = (args[0] ?? "").toLowerCase();
    if (keyword === "") continue;
    if (keyword === "match") {
      const own = matchScope(args.slice(1));
      block = start === "some" ? "some" : start === "every" && own === "all" ? "every" : own;
    } else if (keyword === "include") {
      for (const pattern of args.slice(1)) {
        const absolute = pattern.startsWith("/") ? pattern : `/etc/ssh/${pattern}`;
        const { directory, names } = reader.paths.glob(absolute);
        if (directory === undefined || !reader.readable(`${directory}/`)) reader.unread.push({ path, line: i + 1, what: `Include ${pattern} (${directory ?? "a symlink loop"})` });
        for (const included of names) {
          const real = reader.paths.resolve(included);
          if (real === undefined || !reader.readable(real)) reader.unread.push({ path, line: i + 1, what: `Include ${pattern}: ${included} -> ${real ?? "a symlink loop"}` });
          else collect(included, reader, out, block, [...stack, path]);
        }
      }
    } else if (args.length > 1) {
      out.push({ value: (args[1] ?? "").toLowerCase(), path: real, line: i + 1, text: raw.trim(), scope: block });
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
