import type { z } from "zod";
import type { ConfigProblem } from "../errors.js";
import { unknownKeysTag } from "./schema.js";
import type { SourceDocument, TemplatePath } from "./source-document.js";

type Issue = z.core.$ZodIssue;

/** Turns schema issues into located problems that say what is wrong and what to do. */
export function schemaProblems(source: SourceDocument, input: unknown, issues: readonly Issue[]): ConfigProblem[] {
  return issues.flatMap((issue) => problemsOf(source, input, issue));
}

function problemsOf(source: SourceDocument, input: unknown, issue: Issue): ConfigProblem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  if (issue.code === "unrecognized_keys" && issue.message.startsWith(unknownKeysTag)) {
    const perKey = JSON.parse(issue.message.slice(unknownKeysTag.length)) as { key: string; suggestion: string | null; known: string[] }[];
    return perKey.map(({ key, suggestion, known }) =>
      source.problemAtKey(path, key, suggestion === null ? "unknown key" : `unknown key (did you mean "${suggestion}"?)`,
        suggestion === null ? `known keys here: ${known.join(", ")}` : undefined));
  }
  if (issue.code === "invalid_type" && valueAt(input, path) === undefined) {
    return [source.problemAt(path, "is required", `add ${String(path.at(-1))}: of type ${issue.expected}`)];
  }
  if (issue.code === "invalid_type") {
    return [source.problemAt(path, `must be ${article(issue.expected)}, not ${describe(valueAt(input, path))}`)];
  }
  if (issue.code === "invalid_value") {
    const choices = issue.values.map((v) => JSON.stringify(v)).join(", ");
    return [source.problemAt(path, `must be one of ${choices}, not ${describe(valueAt(input, path))}`)];
  }
  if (issue.code === "custom") {
    const hint = (issue.params as { hint?: string } | undefined)?.hint;
    return [source.problemAt(path, issue.message, hint)];
  }
  if (issue.code === "invalid_union" && issue.errors.length > 0) {
    // A value that matches no alternative: report the alternative's own problem that got furthest.
    const best = issue.errors.reduce((a, b) => (a.length <= b.length ? a : b));
    return best.flatMap((inner) => problemsOf(source, input, { ...inner, path: [...issue.path, ...inner.path] } as Issue));
  }
  return [source.problemAt(path, lowerFirst(issue.message))];
}

function valueAt(input: unknown, path: TemplatePath): unknown {
  let value = input;
  for (const segment of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<string | number, unknown>)[segment];
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `${typeof value} ${JSON.stringify(value)}`;
}

function article(type: string): string {
  if (type === "array") return "a list";
  if (type === "object") return "a mapping";
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
