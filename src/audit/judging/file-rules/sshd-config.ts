import { rules, type Rule } from "../../rules.js";
import { fileFinding, smallFile, type FileRule } from "./file-rule.js";
import type { Finding } from "../../finding.js";
import { ImagePaths } from "./image-paths.js";
import { notKeyOnly, sshdConfiguration, type KeyOnlyKeyword } from "./sshd-effective.js";

const main = "/etc/ssh/sshd_config";
// sshd may Include any file; the audit keeps the content of /etc's (small) and judges an
// Include that leads elsewhere as unread, rather than hold every small file of the image.
const kept = (path: string): boolean => path.startsWith("/etc/");
const ruleOf: Record<KeyOnlyKeyword, Rule> = {
  permitrootlogin: rules.sshdRootLogin,
  passwordauthentication: rules.sshdPasswordAuthentication,
  kbdinteractiveauthentication: rules.sshdKbdInteractive,
  permitemptypasswords: rules.sshdEmptyPasswords,
};

/**
 * sshd's effective settings for every connection it could get: the first value given wins,
 * Include pulls files in where it stands (glob(3) patterns, links resolved inside the image),
 * and any Match block may apply (a `yes` there counts).
 */
export function sshdConfig(): FileRule {
  const files = new Map<string, string>();
  const links = new Map<string, string>();
  const hardLinks = new Map<string, string>();
  return {
    wants: (entry) => {
      if (entry.type === "file" && kept(entry.path)) return smallFile;
      if (entry.type === "symlink" || (entry.type === "other" && entry.linkTarget !== undefined && kept(entry.path))) return 0;
      return undefined;
    },
    visit: (entry, content = "") => {
      if (entry.type === "file") files.set(entry.path, content);
      else if (entry.type === "symlink" && entry.linkTarget !== undefined) links.set(entry.path, entry.linkTarget);
      else if (entry.linkTarget !== undefined) hardLinks.set(entry.path, entry.linkTarget);
      return [];
    },
    finish: () => {
      for (const [path, first] of hardLinks) { const content = files.get(first); if (content !== undefined) files.set(path, content); }
      const paths = new ImagePaths(files, links);
      const real = paths.resolve(main);
      if (real === undefined || (!files.has(real) && !links.has(main))) return [];
      const { possible, usePam, unread } = sshdConfiguration(paths, main, (path) => kept(path) && (path.endsWith("/") || files.has(path)));
      const findings: Finding[] = unread.map((u) => fileFinding(rules.sshdConfigUnread, u.path, `${u.what}: outside what the audit reads`, u.line === undefined ? {} : { line: u.line }));
      for (const [keyword, values] of possible) {
        for (const s of values) {
          if (s !== undefined && notKeyOnly(s.value)) {
            findings.push(fileFinding(ruleOf[keyword], s.path, `${s.text}${s.scope === "global" ? "" : " (inside a Match block)"}`, { line: s.line }));
          }
          if (s === undefined && keyword === "passwordauthentication") {
            findings.push(fileFinding(rules.sshdPasswordDefault, main, "PasswordAuthentication is not set"));
          }
          // OpenSSH's default is yes: with PAM, keyboard-interactive asks for the password.
          if (s === undefined && keyword === "kbdinteractiveauthentication") {
            const pam = usePam.some((p) => p !== undefined && notKeyOnly(p.value));
            findings.push(fileFinding(rules.sshdKbdInteractive, main, `KbdInteractiveAuthentication is not set (OpenSSH's default is yes${pam ? "; with UsePAM yes it takes passwords" : ""})`, pam ? {} : { severity: "low" }));
          }
        }
      }
      return findings;
    },
  };
}
