import { randomUUID } from "node:crypto";
import { isPair, isScalar, isSeq, visit, type Scalar } from "yaml";
import type { ConfigProblem } from "../errors.js";
import { formatGoTime } from "../packer/go-time.js";
import { didYouMean } from "./did-you-mean.js";
import type { SourceDocument, TemplatePath } from "./source-document.js";
import type { ResolvedVariable, VariableValue } from "./variables.js";

/** What `${{ … }}` expressions can see. Evaluated once per build, so a timestamp is the same everywhere. */
export interface ExpressionScope {
  variables: ReadonlyMap<string, ResolvedVariable>;
  /** Declared variables, including those without a value (already reported, so not again). */
  declared: ReadonlySet<string>;
  env: NodeJS.ProcessEnv;
  /** Unix seconds, like Packer's `timestamp`. */
  timestamp: number;
  uuid?: string;
}

const expression = /\$(\$?)\{\{\s*(.*?)\s*\}\}/g;
const functions = ["var.NAME", "env.NAME", "timestamp", "uuid", "isotime \"LAYOUT\""];

/**
 * Returns the dotted paths whose expressions failed, so they are not reported again.
 * Replaces `${{ var.x }}`, `${{ env.X }}`, `${{ timestamp }}`, `${{ uuid }}` and
 * `${{ isotime "2006-01-02" }}` (Go's layouts, as Packer's isotime) in every string
 * value of the template (not in `variables`, whose defaults are plain values). `$${{` is a
 * literal `${{`. The syntax stays clear of the shell's `${VAR}` in inline commands. A value
 * that is exactly one `${{ var.x }}` keeps the variable's type.
 */
export function interpolate(source: SourceDocument, scope: ExpressionScope, problems: ConfigProblem[]): Set<string> {
  const uuid = scope.uuid ?? randomUUID();
  const failed = new Set<string>();
  visit(source.document, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.value === "variables") return visit.SKIP;
      return undefined;
    },
    Scalar(key, node, path) {
      if (key === "key" || typeof node.value !== "string" || !node.value.includes("{{")) return;
      const at = templatePath(path, node);
      node.value = evaluate(node as Scalar<string>, (expr) => {
        const value = lookup(expr, scope, uuid);
        if (value.ok) return value.value;
        failed.add(at.join("."));
        if (value.message !== undefined) problems.push(source.problemAt(at, value.message, value.hint));
        return "";
      });
    },
  });
  return failed;
}

function evaluate(node: Scalar<string>, lookupExpr: (expr: string) => VariableValue): VariableValue {
  const text = node.value;
  // Exactly one expression (two in a row, "${{ a }}-${{ b }}", are not one).
  const whole = /^\$\{\{\s*((?:(?!\}\}).)*?)\s*\}\}$/.exec(text);
  if (whole?.[1] !== undefined) return lookupExpr(whole[1]);
  return text.replace(expression, (_all, escaped: string, expr: string) => (escaped === "$" ? `\${{ ${expr} }}` : String(lookupExpr(expr))));
}

type Lookup = { ok: true; value: VariableValue } | { ok: false; message?: string; hint?: string };

function lookup(expr: string, scope: ExpressionScope, uuid: string): Lookup {
  if (expr === "timestamp") return { ok: true, value: String(scope.timestamp) };
  if (expr === "uuid") return { ok: true, value: uuid };
  // Packer's isotime: the build's start, UTC, in a Go reference-time layout.
  const isotime = /^isotime(?:\s+("(?:[^"\\]|\\.)*"))?$/.exec(expr);
  if (isotime !== null) {
    const layout = isotime[1] === undefined ? "2006-01-02T15:04:05Z07:00" : JSON.parse(isotime[1]) as string;
    return { ok: true, value: formatGoTime(new Date(scope.timestamp * 1000), layout) };
  }
  const dotted = /^(var|env)\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(expr);
  if (dotted?.[1] === "var" && dotted[2] !== undefined) {
    const name = dotted[2];
    const variable = scope.variables.get(name);
    if (variable !== undefined) return { ok: true, value: variable.value };
    // Declared without a value: that problem is reported at the declaration, once.
    if (scope.declared.has(name)) return { ok: false };
    const guess = didYouMean(name, scope.declared);
    return { ok: false, message: `unknown variable "${name}"${guess === undefined ? "" : ` (did you mean "${guess}"?)`}`, hint: "declare it under variables:" };
  }
  if (dotted?.[1] === "env" && dotted[2] !== undefined) {
    const value = scope.env[dotted[2]];
    if (value !== undefined) return { ok: true, value };
    return { ok: false, message: `environment variable ${dotted[2]} is not set`, hint: `set ${dotted[2]}, or use a variable with a default` };
  }
  const name = /^[A-Za-z_][\w.]*/.exec(expr)?.[0] ?? expr;
  const guess = didYouMean(name, ["timestamp", "uuid", "var", "env", "isotime"]);
  return {
    ok: false,
    message: `unknown function "${name}" in \${{ ${expr} }}${guess === undefined ? "" : ` (did you mean "${guess}"?)`}`,
    hint: `one of: ${functions.join(", ")}`,
  };
}

/** The dotted template path of a node, from the ancestors yaml's visitor passes. */
function templatePath(ancestors: readonly unknown[], node: unknown): TemplatePath {
  const chain = [...ancestors, node];
  const out: (string | number)[] = [];
  for (let i = 0; i < chain.length - 1; i++) {
    const ancestor = chain[i];
    if (isPair(ancestor) && isScalar(ancestor.key)) out.push(String(ancestor.key.value));
    else if (isSeq(ancestor)) out.push(ancestor.items.indexOf(chain[i + 1]));
  }
  return out;
}
