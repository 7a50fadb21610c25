import { readFile } from "node:fs/promises";
import { isMap, isScalar, parse, type Pair } from "yaml";
import { KilnError, type ConfigProblem } from "../errors.js";
import { didYouMean } from "./did-you-mean.js";
import type { SourceDocument } from "./source-document.js";

export type VariableValue = string | number | boolean;

export interface VariableInputs {
  /** `--var name=value`, in order; later ones win. */
  vars: readonly string[];
  /** `--var-file FILE` (YAML or JSON mapping), in order. */
  varFiles: readonly string[];
  /** Where `KILN_VAR_<name>` values come from. */
  env: NodeJS.ProcessEnv;
}

export interface ResolvedVariable {
  value: VariableValue;
  sensitive: boolean;
  source: "default" | "environment" | "var-file" | "command line";
}

interface Declaration {
  default?: VariableValue;
  sensitive: boolean;
  /** Not a value or a {default, description, sensitive} mapping; the schema reports it. */
  invalid?: boolean;
}

/**
 * Resolves each declared variable: its default, then `KILN_VAR_<name>`, then var files, then
 * `--var` (the last wins). Setting an undeclared variable or leaving one without a value is
 * a problem located at the template's `variables` section.
 */
export async function resolveVariables(source: SourceDocument, inputs: VariableInputs, problems: ConfigProblem[]): Promise<{ declared: Set<string>; resolved: Map<string, ResolvedVariable> }> {
  const declared = declarations(source);
  const resolved = new Map<string, ResolvedVariable>();
  for (const [name, d] of declared) {
    if (d.default !== undefined) resolved.set(name, { value: d.default, sensitive: d.sensitive, source: "default" });
  }
  const set = (name: string, value: VariableValue, from: ResolvedVariable["source"], origin: string): void => {
    const d = declared.get(name);
    if (d === undefined) {
      const guess = didYouMean(name, declared.keys());
      problems.push(source.problemAtKey([], "variables", `${origin} sets undeclared variable "${name}"${guess === undefined ? "" : ` (did you mean "${guess}"?)`}`,
        `declare it under variables:, or drop it from ${origin}`));
      return;
    }
    resolved.set(name, { value, sensitive: d.sensitive, source: from });
  };
  for (const [key, value] of Object.entries(inputs.env)) {
    if (key.startsWith("KILN_VAR_") && value !== undefined && declared.has(key.slice(9))) set(key.slice(9), value, "environment", key);
  }
  for (const file of inputs.varFiles) {
    for (const [name, value] of Object.entries(await readVarFile(file))) set(name, value, "var-file", `--var-file ${file}`);
  }
  for (const assignment of inputs.vars) {
    const eq = assignment.indexOf("=");
    if (eq <= 0) throw new KilnError("KILN_USAGE", `--var ${JSON.stringify(assignment)} is not name=value`, { exitCode: 2, hint: "write it like --var suite=bookworm" });
    set(assignment.slice(0, eq), assignment.slice(eq + 1), "command line", "--var");
  }
  for (const [name, d] of declared) {
    if (!resolved.has(name) && d.invalid !== true) {
      problems.push(source.problemAt(["variables", name], `variable "${name}" has no value`,
        `give it a default, pass --var ${name}=…, or set KILN_VAR_${name}`));
    }
  }
  return { declared: new Set(declared.keys()), resolved };
}

function declarations(source: SourceDocument): Map<string, Declaration> {
  const out = new Map<string, Declaration>();
  const section = source.document.get("variables", true);
  if (!isMap(section)) return out;
  for (const pair of section.items as Pair[]) {
    if (!isScalar(pair.key)) continue;
    const name = String(pair.key.value);
    const node = pair.value;
    if (isScalar(node) && ["string", "number", "boolean"].includes(typeof node.value)) {
      out.set(name, { default: node.value as VariableValue, sensitive: false });
    } else if (isMap(node)) {
      const d = node.get("default");
      const declaration: Declaration = { sensitive: node.get("sensitive") === true };
      if (typeof d === "string" || typeof d === "number" || typeof d === "boolean") declaration.default = d;
      out.set(name, declaration);
    } else {
      out.set(name, { sensitive: false, invalid: true });
    }
  }
  return out;
}

async function readVarFile(file: string): Promise<Record<string, VariableValue>> {
  let parsed: unknown;
  try {
    parsed = parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new KilnError("KILN_VAR_FILE", `cannot read --var-file ${file}: ${(error as Error).message.split("\n")[0]}`, { exitCode: 2, hint: "give a YAML or JSON file of name: value pairs" });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new KilnError("KILN_VAR_FILE", `--var-file ${file} is not a mapping`, { exitCode: 2, hint: "give a YAML or JSON file of name: value pairs" });
  }
  const out: Record<string, VariableValue> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw new KilnError("KILN_VAR_FILE", `--var-file ${file}: ${name} must be a string, number or boolean`, { exitCode: 2 });
    }
    out[name] = value;
  }
  return out;
}
