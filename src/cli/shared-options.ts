import { Option, type Command } from "commander";
import type { Redactor } from "../report/redact.js";
import { JsonReporter, TextReporter, type Reporter } from "../report/reporter.js";
import { loadTemplate, type LoadedTemplate } from "../template/load.js";

export interface TemplateOptions {
  var: string[];
  varFile: string[];
  json?: boolean;
  only?: string;
  except?: string;
  strict?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Options every command that reads a template takes. */
export function withTemplateOptions(command: Command): Command {
  return command
    .option("--var <name=value>", "set a template variable (repeatable)", collect, [])
    .option("--var-file <file>", "read variables from a YAML or JSON file (repeatable)", collect, [])
    .option("--only <builders>", "Packer templates: build only these builders (comma-separated names or types)")
    .option("--except <builders>", "Packer templates: leave these builders out")
    .option("--strict", "Packer templates: an option kiln does not support is an error, not a warning")
    .addOption(new Option("--json", "print machine-readable JSON (one event per line for build)"));
}

/** Loads a template and registers its sensitive values, so nothing printed after this shows them. */
/** `--only a,b` as a list of builder names. */
export function builderList(text: string | undefined): string[] | undefined {
  return text?.split(",").map((s) => s.trim()).filter(Boolean);
}

export async function loadFromCli(file: string, options: TemplateOptions, redactor: Redactor, warn?: (line: string) => void): Promise<LoadedTemplate> {
  const only = builderList(options.only);
  const except = builderList(options.except);
  const loaded = await loadTemplate(file, {
    vars: options.var, varFiles: options.varFile, env: process.env,
    ...(only === undefined ? {} : { only }), ...(except === undefined ? {} : { except }), ...(options.strict === true ? { strict: true } : {}),
  });
  for (const variable of loaded.variables.values()) {
    if (variable.sensitive) redactor.addSecret(String(variable.value));
  }
  for (const derived of loaded.derivedSecrets) redactor.addSecret(derived);
  // Never silently dropped: each unsupported option of a Packer template, named.
  for (const warning of loaded.warnings) warn?.(`warning: ${warning}`);
  return loaded;
}

/** Packer's spelling of the shared flags (-var, -var-file=F, -only=a,b, -except), as kiln's. */
export function packerFlags(argv: readonly string[]): string[] {
  return argv.map((arg) => arg.replace(/^-(var|var-file|only|except)(?==|$)/, "--$1"));
}

export function reporterFor(options: { json?: boolean }, write: (line: string) => void, redactor: Redactor): Reporter {
  return options.json === true ? new JsonReporter(write, redactor) : new TextReporter(write, redactor);
}
