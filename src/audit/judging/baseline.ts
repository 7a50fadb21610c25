import { readUserFile } from "../../system/read-user-file.js";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type YAMLMap } from "yaml";
import { formatProblem, KilnError, type ConfigProblem } from "../../errors.js";
import { didYouMean } from "../../template/did-you-mean.js";
import type { Finding } from "../finding.js";
import { allRules } from "../rules.js";

/** One finding (or family of findings) a team has looked at and accepted. */
export interface BaselineEntry {
  rule: string;
  /** Absolute inside the image; `*` matches within a segment, `**` any number of segments. */
  path?: string;
  /** Byte offset of a raw finding in the image file. */
  offset?: number;
  reason: string;
  /** `file:line` of the entry, so a report can say which entry accepted a finding. */
  where: string;
}

export interface Baseline {
  file: string;
  entries: readonly BaselineEntry[];
}

export interface AcceptedFinding extends Finding {
  acceptance: { where: string; reason: string };
}

const entryKeys = ["rule", "path", "offset", "reason"];
const example = "e.g. accept: [{ rule: shell-history, path: /root/.bash_history, reason: built by CI, nothing typed }]";

export async function loadBaseline(file: string): Promise<Baseline> {
  const text = await readUserFile(file, { code: "KILN_BASELINE_UNREADABLE", kind: "baseline", hint: "pass the path of a YAML or JSON baseline file" });
  return parseBaseline(file, text);
}

/** A baseline from YAML or JSON text; every problem in it at once, each with its file:line:column. */
export function parseBaseline(file: string, text: string): Baseline {
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  const problemAt = (offset: number, path: string, message: string, why?: string): void => {
    const { line, col } = lines.linePos(offset);
    problems.push({ file, line, column: col, path, message, ...(why === undefined ? {} : { hint: why }) });
  };
  for (const error of document.errors) problemAt(error.pos[0], "", error.message.split("\n")[0] ?? "", "fix the YAML/JSON syntax");
  // After a syntax error the document is not what its author meant, so only the syntax is reported.
  const items = problems.length > 0 ? [] : acceptList(document.contents, (node, ...rest) => problemAt(offsetOf(node), ...rest));

  const entries: BaselineEntry[] = [];
  for (const { index, item } of items) {
    const before = problems.length;
    const entry = parseEntry(item, `accept.${index}`, (node, ...rest) => problemAt(offsetOf(node), ...rest));
    if (entry !== undefined && problems.length === before) entries.push({ ...entry, where: `${file}:${lines.linePos(offsetOf(item)).line}` });
  }
  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line || a.column - b.column);
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    throw new KilnError("KILN_BASELINE_INVALID", `baseline has ${count}:\n${problems.map(formatProblem).join("\n")}`, { exitCode: 2 });
  }
  return { file, entries };
}

/** The entries of the document's accept list (mappings only; anything else is reported). */
function acceptList(root: unknown, report: Report): { index: number; item: YAMLMap }[] {
  if (!isMap(root)) {
    report(root, "", "a baseline must be a mapping with an accept list", example);
    return [];
  }
  for (const pair of root.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : "";
    if (key !== "accept") report(pair.key, key, `unknown key "${key}"`, hint(didYouMean(key, ["accept"]), "a baseline has one key, accept"));
  }
  const accept = root.get("accept", true);
  if (accept === undefined) report(root, "accept", "the accept list is missing", example);
  else if (!isSeq(accept)) report(accept, "accept", "must be a list of entries", example);
  else {
    return accept.items.flatMap((item, index) => {
      if (isMap(item)) return [{ index, item }];
      report(item, `accept.${index}`, "must be a mapping with rule, reason, and path or offset", example);
      return [];
    });
  }
  return [];
}

type Report = (node: unknown, path: string, message: string, hint?: string) => void;

const offsetOf = (node: unknown): number => (node as Node | null | undefined)?.range?.[0] ?? 0;

/** The entry's fields, reporting each problem; undefined when a required field is missing. */
function parseEntry(item: YAMLMap, path: string, report: Report): Omit<BaselineEntry, "where"> | undefined {
  for (const pair of item.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : "";
    if (!entryKeys.includes(key)) report(pair.key, `${path}.${key}`, `unknown key "${key}"`, hint(didYouMean(key, entryKeys), `an entry has ${entryKeys.join(", ")}`));
  }
  const text = (key: string, missing?: [string, string]): string | undefined => {
    const node = item.get(key, true);
    if (node === undefined) {
      if (missing !== undefined) report(item, `${path}.${key}`, ...missing);
      return undefined;
    }
    if (isScalar(node) && typeof node.value === "string" && node.value.trim() !== "") return node.value;
    report(node, `${path}.${key}`, "must be a non-empty string");
    return undefined;
  };

  const rule = text("rule", ["the rule id is missing", "e.g. rule: shell-history"]);
  if (rule !== undefined && !allRules.some((r) => r.id === rule)) {
    const ids = allRules.map((r) => r.id);
    report(item.get("rule", true), `${path}.rule`, `unknown rule "${rule}"`, hint(didYouMean(rule, ids), `kiln's rules are ${ids.join(", ")}`));
  }
  const reason = text("reason", ["the reason is missing", "say why this is acceptable, for whoever reads the baseline next"]);

  const glob = text("path");
  const globNode = item.get("path", true);
  if (glob !== undefined && !glob.startsWith("/")) report(globNode, `${path}.path`, `"${glob}" is not absolute`, "paths are absolute inside the image, e.g. /root/.bash_history");
  else if (glob !== undefined && glob.length > 1 && glob.endsWith("/")) report(globNode, `${path}.path`, `"${glob}" ends with a slash`, `to accept everything under a directory, write ${glob}**`);

  const offsetNode = item.get("offset", true);
  const offset = isScalar(offsetNode) ? offsetNode.value : undefined;
  if (offsetNode !== undefined && !(typeof offset === "number" && Number.isSafeInteger(offset) && offset >= 0)) {
    report(offsetNode, `${path}.offset`, "must be a byte offset (a whole number, 0 or more)", "copy it from the finding, e.g. offset: 1048576");
  }
  if (globNode !== undefined && offsetNode !== undefined) report(offsetNode, `${path}.offset`, "an entry names a path or an offset, not both");

  if (rule === undefined || reason === undefined) return undefined;
  return { rule, reason, ...(glob === undefined ? {} : { path: glob }), ...(typeof offset === "number" ? { offset } : {}) };
}

function hint(suggestion: string | undefined, otherwise: string): string {
  return suggestion === undefined ? otherwise : `did you mean "${suggestion}"?`;
}

/**
 * Splits findings into those the baseline accepts and those it does not. The first matching entry
 * accepts a finding; entries that accepted nothing are returned too, so stale ones can be pruned.
 */
export function applyBaseline(baseline: Baseline, findings: readonly Finding[]): { kept: Finding[]; accepted: AcceptedFinding[]; unused: BaselineEntry[] } {
  const matchers = baseline.entries.map((entry) => ({ entry, path: entry.path === undefined ? undefined : globPattern(entry.path) }));
  const used = new Set<BaselineEntry>();
  const kept: Finding[] = [];
  const accepted: AcceptedFinding[] = [];
  for (const finding of findings) {
    const match = matchers.find(({ entry, path }) => {
      if (entry.rule !== finding.rule.id) return false;
      const at = finding.location;
      if (entry.offset !== undefined) return at.kind === "raw" && at.offset === entry.offset;
      // A path also names the blocks a deleted file left behind, by the name it had.
      const target = at.kind === "file" ? at.path : at.formerPath;
      return path === undefined || (target !== undefined && path.test(target));
    });
    if (match === undefined) kept.push(finding);
    else {
      used.add(match.entry);
      accepted.push({ ...finding, acceptance: { where: match.entry.where, reason: match.entry.reason } });
    }
  }
  return { kept, accepted, unused: baseline.entries.filter((e) => !used.has(e)) };
}

/** `*` within one path segment, `**` as a whole segment for any number of them (one or more at the end). */
function globPattern(glob: string): RegExp {
  const segments = glob.split("/").slice(1);
  const source = segments.map((segment, i) => {
    if (segment === "**") return i === segments.length - 1 ? "(?:/[^/]+)+" : "(?:/[^/]+)*";
    return `/${segment.split(/\*+/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*")}`;
  });
  return new RegExp(`^${source.join("")}$`);
}
