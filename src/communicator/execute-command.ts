import { shellQuote } from "../system/shell-quote.js";
import { executeCommandPlaceholder } from "../template/schema.js";

export interface ExecuteCommandValues {
  /** The stored script: a path kiln chose (letters, digits, / - only), so it needs no quoting. */
  path: string;
  /** What `{{ .Vars }}` becomes: Packer's `NAME='value' …` assignments, or nothing. */
  vars: string;
  /** The private file of `export NAME='value'` lines, for `. {{ .EnvVarFile }} && …`. */
  envFile: string;
}

/**
 * A shell provisioner's `execute_command` with Packer's placeholders filled in: `{{ .Path }}`,
 * `{{ .Vars }}` (assignments on the command line, as Packer writes them) and
 * `{{ .EnvVarFile }}` (Packer's `use_env_var_file` form, which keeps values off command lines).
 */
export function fillExecuteCommand(template: string, values: ExecuteCommandValues): string {
  return template.replace(executeCommandPlaceholder, (_whole, name: string) => {
    if (name === "Path") return values.path;
    if (name === "EnvVarFile") return values.envFile;
    return values.vars;
  });
}

/** `NAME='value' NAME2='value2'`, Packer's `{{ .Vars }}`. */
export function inlineVars(env: Readonly<Record<string, string>>): string {
  return Object.entries(env).map(([name, value]) => `${name}=${shellQuote(value)}`).join(" ");
}

/** `export NAME='value'` lines for a private file the script's shell sources. */
export function envFileText(env: Readonly<Record<string, string>>): string {
  return Object.entries(env).map(([name, value]) => `export ${name}=${shellQuote(value)}\n`).join("");
}
