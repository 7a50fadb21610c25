import { rules, type Rule } from "../rules.js";
import { fileFinding, smallFile, type FileRule } from "./file-rule.js";
import type { Finding } from "../finding.js";
import { notKeyOnly, sshdPossibleValues, type KeyOnlyKeyword } from "./sshd-effective.js";

const main = "/etc/ssh/sshd_config";
const dropIns = /^\/etc\/ssh\/sshd_config\.d\/[^/]+$/;
const ruleOf: Record<KeyOnlyKeyword, Rule> = {
  permitrootlogin: rules.sshdRootLogin,
  passwordauthentication: rules.sshdPasswordAuthentication,
  kbdinteractiveauthentication: rules.sshdKbdInteractive,
  permitemptypasswords: rules.sshdEmptyPasswords,
};

/**
 * sshd's effective settings for every connection it could get: the first value given wins,
 * Include pulls drop-ins in where it stands, and any Match block may apply (a `yes` there counts).
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
      const findings: Finding[] = [];
      for (const [keyword, possible] of sshdPossibleValues(files, main)) {
        for (const s of possible) {
          if (s !== undefined && notKeyOnly(s.value)) {
            findings.push(fileFinding(ruleOf[keyword], s.path, `${s.text}${s.scope === "global" ? "" : " (inside a Match block)"}`, { line: s.line }));
          }
          // Unset KbdInteractiveAuthentication is left to sshd's PAM setup; hardening sets it.
          if (s === undefined && keyword === "passwordauthentication") {
            findings.push(fileFinding(rules.sshdPasswordDefault, main, "PasswordAuthentication is not set"));
          }
        }
      }
      return findings;
    },
  };
}
