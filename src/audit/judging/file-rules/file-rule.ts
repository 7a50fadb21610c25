import type { Finding } from "../../finding.js";
import type { TreeEntry } from "../../sources/image-tree.js";
import type { Rule } from "../../rules.js";

/**
 * A rule judged on a file's path, type and (small) content. `wants` says whether the entry
 * concerns the rule and how many bytes of content it needs; the walker reads no more.
 */
export interface FileRule {
  wants(entry: TreeEntry): number | undefined;
  visit(entry: TreeEntry, content: string | undefined): Finding[];
  /** Findings that need the whole tree (sshd's Include, counts of leftovers). */
  finish?(): Finding[];
}

/** Content a rule reads is capped: a rule judges configuration files, not disk images. */
export const smallFile = 1024 * 1024;

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

export function fileFinding(rule: Rule, path: string, message: string, extra: { line?: number; excerpt?: string; severity?: Finding["severity"] } = {}): Finding {
  return {
    rule, severity: extra.severity ?? rule.severity, message,
    location: { kind: "file", path, ...(extra.line === undefined ? {} : { line: extra.line }) },
    ...(extra.excerpt === undefined ? {} : { excerpt: extra.excerpt }),
  };
}

/** Lines that mean something: not blank, not a comment. */
export function meaningfulLines(content: string): { text: string; line: number }[] {
  return content.split("\n").map((text, i) => ({ text: text.trim(), line: i + 1 })).filter((l) => l.text !== "" && !l.text.startsWith("#"));
}
