import { executeCommandPlaceholder } from "../template/schema.js";

/**
 * A shell provisioner's `execute_command` with its placeholders filled in. `path` and
 * `envFile` are paths kiln chose (letters, digits, / - only), so they need no quoting and stay
 * intact inside the single quotes people write around `{{ .Vars }} {{ .Path }}`.
 */
export function fillExecuteCommand(template: string, path: string, envFile: string | undefined): string {
  return template.replace(executeCommandPlaceholder, (_whole, name: string) => {
    if (name === "Path") return path;
    return envFile === undefined ? "" : `. ${envFile} &&`;
  });
}

/** `export NAME='value'` lines for a private file the script's shell sources. */
export function envFileText(env: Readonly<Record<string, string>>, quote: (value: string) => string): string {
  return Object.entries(env).map(([name, value]) => `export ${name}=${quote(value)}\n`).join("");
}
