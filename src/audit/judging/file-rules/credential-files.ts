import { rules } from "../../rules.js";
import { baseName, fileFinding, meaningfulLines, smallFile, type FileRule } from "./file-rule.js";

type Reader = (content: string) => string | undefined;

/** Each known credentials file, and what in it is a credential (a description, or nothing). */
const readers: { matches: (path: string) => boolean; read: Reader }[] = [
  {
    matches: (p) => /\/\.aws\/(?:credentials|config)$/.test(p),
    read: (c) => {
      const keys = [...c.matchAll(/^\s*(aws_access_key_id|aws_secret_access_key|aws_session_token)\s*=\s*\S+/gim)].map((m) => (m[1] ?? "").toLowerCase());
      return keys.length === 0 ? undefined : [...new Set(keys)].join(", ");
    },
  },
  {
    matches: (p) => p.endsWith("/.docker/config.json"),
    read: (c) => {
      const auths = dockerAuths(c);
      return auths.length === 0 ? undefined : `registry credentials for ${auths.join(", ")}`;
    },
  },
  {
    matches: (p) => baseName(p) === ".git-credentials",
    read: (c) => {
      const n = meaningfulLines(c).filter((l) => /^\w[\w+.-]*:\/\/[^/\s:@]+:[^@\s]+@/.test(l.text)).length;
      return n === 0 ? undefined : `${n} stored git login${n === 1 ? "" : "s"}`;
    },
  },
  {
    matches: (p) => baseName(p) === ".netrc" || baseName(p) === "_netrc",
    read: (c) => (/(?:^|\s)password\s+\S+/.test(c) ? "machine logins with passwords" : undefined),
  },
  {
    matches: (p) => baseName(p) === ".pgpass",
    read: (c) => {
      const n = meaningfulLines(c).filter((l) => (l.text.split(":")[4] ?? "") !== "").length;
      return n === 0 ? undefined : `${n} PostgreSQL password${n === 1 ? "" : "s"}`;
    },
  },
];

function dockerAuths(content: string): string[] {
  try {
    const config = JSON.parse(content) as { auths?: Record<string, { auth?: string; identitytoken?: string; password?: string }> };
    return Object.entries(config.auths ?? {}).filter(([, a]) => Boolean(a.auth ?? a.identitytoken ?? a.password)).map(([registry]) => registry);
  } catch {
    return /"(?:auth|identitytoken)"\s*:\s*"[^"]+"/.test(content) ? ["a registry"] : [];
  }
}

/** Files whose whole purpose is to hold credentials: AWS, Docker, git, netrc, PostgreSQL. */
export const credentialFiles: FileRule = {
  wants: (entry) => (entry.type === "file" && readers.some((r) => r.matches(entry.path)) ? smallFile : undefined),
  visit: (entry, content = "") => {
    const what = readers.find((r) => r.matches(entry.path))?.read(content);
    return what === undefined ? [] : [fileFinding(rules.credentialsFile, entry.path, what)];
  },
};
