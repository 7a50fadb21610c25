import { Option, type Command } from "commander";
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

export async function loadFromCli(file: string, options: TemplateOptions, now?: Date): Promise<LoadedTemplate> {
  return loadTemplate(file, { vars: options.var, varFiles: options.varFile, env: process.env, ...(now === undefined ? {} : { now }) });
}

export function reporterFor(options: { json?: boolean }, write: (line: string) => void): Reporter {
  return options.json === true ? new JsonReporter(write) : new TextReporter(write);
}

/** Sensitive variables are never printed, whatever prints them. */
export function registerSecrets(reporter: Reporter, loaded: LoadedTemplate): void {
  for (const variable of loaded.variables.values()) {
    if (variable.sensitive) reporter.redactor.addSecret(String(variable.value));
  }
}
