import { Option, type Command } from "commander";
import type { Redactor } from "../report/redact.js";
import { JsonReporter, TextReporter, type Reporter } from "../report/reporter.js";
import { loadTemplate, type LoadedTemplate } from "../template/load.js";

export interface TemplateOptions {
  var: string[];
  varFile: string[];
  json?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Options every command that reads a template takes. */
export function withTemplateOptions(command: Command): Command {
  return command
    .option("--var <name=value>", "set a template variable (repeatable)", collect, [])
    .option("--var-file <file>", "read variables from a YAML or JSON file (repeatable)", collect, [])
    .addOption(new Option("--json", "print machine-readable JSON (one event per line for build)"));
}

/** Loads a template and registers its sensitive values, so nothing printed after this shows them. */
export async function loadFromCli(file: string, options: TemplateOptions, redactor: Redactor): Promise<LoadedTemplate> {
  const loaded = await loadTemplate(file, { vars: options.var, varFiles: options.varFile, env: process.env });
  for (const variable of loaded.variables.values()) {
    if (variable.sensitive) redactor.addSecret(String(variable.value));
  }
  return loaded;
}

export function reporterFor(options: { json?: boolean }, write: (line: string) => void, redactor: Redactor): Reporter {
  return options.json === true ? new JsonReporter(write, redactor) : new TextReporter(write, redactor);
}
