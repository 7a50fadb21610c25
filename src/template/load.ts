import { stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { ConfigError, type ConfigProblem } from "../errors.js";
import { interpolate } from "./interpolate.js";
import { template as templateSchema, type Template } from "./schema.js";
import { schemaProblems } from "./schema-problems.js";
import { SourceDocument } from "./source-document.js";
import { convertPacker, isPackerTemplate } from "../packer/packer-template.js";
import { resolveVariables, type ResolvedVariable, type VariableInputs } from "./variables.js";
import type { NamedFile } from "../builders/builder-kind.js";
import { builderKind } from "../builders/registry.js";

export interface LoadOptions extends VariableInputs {
  /** The build's clock, so every `${{ timestamp }}` and the output directory agree. */
  now?: Date;
  /** Packer templates: -only / -except, and --strict (an unsupported option is an error). */
  only?: readonly string[];
  except?: readonly string[];
  strict?: boolean;
}

/** A template that passed validation, with everything a build needs to know about it. */
export interface LoadedTemplate {
  file: string;
  /** Relative paths in the template (sources, scripts, bases) are relative to this. */
  directory: string;
  template: Template;
  /** The template file's text, before expressions were evaluated (it holds no sensitive value). */
  sourceText: string;
  variables: ReadonlyMap<string, ResolvedVariable>;
  startedAt: Date;
  /** Options of a Packer template kiln does not support, each named (empty for kiln templates). */
  warnings: string[];
  /** The template was Packer JSON, converted. */
  packer: boolean;
  /** Values computed from sensitive variables (a Packer template's `{{user \`token\` | …}}`): hidden too. */
  derivedSecrets: string[];
}

/**
 * Reads, resolves and validates a template. Every problem is collected and thrown at once as
 * a ConfigError, ordered by position.
 */
export async function loadTemplate(file: string, options: LoadOptions): Promise<LoadedTemplate> {
  const source = await SourceDocument.read(file);
  const problems: ConfigProblem[] = [];
  const startedAt = options.now ?? new Date();
  if (isPackerTemplate(source.document.toJS(), source.text)) return loadPacker(source, file, options, startedAt);
  const { declared, resolved: variables } = await resolveVariables(source, options, problems);
  const failedPaths = interpolate(source, { variables, declared, env: options.env, timestamp: Math.floor(startedAt.getTime() / 1000) }, problems);
  // A value whose expression failed, or a variable already reported, is not checked again: one problem per mistake.
  for (const p of problems) failedPaths.add(p.path);
  const { template, directory } = await validated(source, file, source.document.toJS(), problems, failedPaths);
  const loaded: LoadedTemplate = { file, directory, template, sourceText: source.text, variables, startedAt, warnings: [], packer: false, derivedSecrets: [] };
  return withBuilderWarnings(loaded);
}

/**
 * The schema, then the files the template names; with the problems found before, thrown at once
 * in file order. A path in `failedPaths` (its expression failed) is not checked again.
 */
async function validated(source: SourceDocument, file: string, input: unknown, problems: ConfigProblem[], failedPaths: ReadonlySet<string>): Promise<{ template: Template; directory: string }> {
  const parsed = templateSchema.safeParse(input);
  if (!parsed.success) problems.push(...schemaProblems(source, input, parsed.error.issues).filter((p) => !failedPaths.has(p.path)));
  const directory = dirname(resolve(file));
  if (parsed.success) problems.push(...(await missingFiles(source, parsed.data, directory)));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(dedupe(problems).sort((a, b) => a.line - b.line || a.column - b.column));
  return { template: parsed.data, directory };
}

/** A Packer JSON template: converted (every `{{ }}` rendered), then validated as a kiln template. */
async function loadPacker(source: SourceDocument, file: string, options: LoadOptions, startedAt: Date): Promise<LoadedTemplate> {
  const converted = await convertPacker(source, file, {
    vars: options.vars, varFiles: options.varFiles, env: options.env, now: startedAt, mode: "evaluate",
    ...(options.only === undefined ? {} : { only: options.only }), ...(options.except === undefined ? {} : { except: options.except }),
  });
  const problems = [...converted.problems];
  if (options.strict === true) {
    problems.push(...converted.warningsAt.map((w) => source.problemAt(w.path, w.message, "--strict refuses options kiln does not support: remove them, or build without --strict")));
  }
  // A value whose {{ }} failed is not checked again: one problem per mistake.
  const { template, directory } = await validated(source, file, converted.template, problems, new Set(converted.problems.map((p) => p.path)));
  const variables = new Map<string, ResolvedVariable>([...converted.variables].map(([name, v]) => [name, {
    value: v.value, sensitive: v.sensitive, source: v.source === "default" ? "default" : v.source === "-var" ? "command line" : "var-file",
  }]));
  return withBuilderWarnings({ file, directory, template, sourceText: source.text, variables, startedAt, warnings: converted.warnings, packer: true, derivedSecrets: converted.derivedSecrets });
}

/** What each builder finds worth saying about the template (user data reading IMDSv1, say), after the converter's own. */
async function withBuilderWarnings(loaded: LoadedTemplate): Promise<LoadedTemplate> {
  const name = basename(loaded.file);
  for (const [i, builder] of loaded.template.builders.entries()) {
    for (const warning of await builderKind(builder).warnings(loaded, builder, i)) loaded.warnings.push(`${name}: builders.${i}: ${warning}`);
  }
  return loaded;
}

/** Files the template names must exist before anything is built. */
async function missingFiles(source: SourceDocument, template: Template, directory: string): Promise<ConfigProblem[]> {
  const wanted: NamedFile[] = template.builders.flatMap((b, i) => builderKind(b).files(b).map((f) => ({ ...f, path: ["builders", i, ...f.path] })));
  template.provisioners.forEach((p, i) => {
    if (p.type === "file" && p.direction === "upload") wanted.push({ path: ["provisioners", i, "source"], file: p.source, kind: "any" });
    if (p.type === "shell" || p.type === "powershell" || p.type === "shell-local") {
      if (p.script !== undefined) wanted.push({ path: ["provisioners", i, "script"], file: p.script, kind: "file" });
      p.scripts?.forEach((file, j) => wanted.push({ path: ["provisioners", i, "scripts", j], file, kind: "file" }));
    }
  });
  const problems: ConfigProblem[] = [];
  for (const w of wanted) {
    const full = resolve(directory, w.file);
    const found = await stat(full).catch(() => undefined);
    if (found === undefined) {
      problems.push(source.problemAt(w.path, `${full} does not exist`, "paths are relative to the template's directory"));
    } else if (w.kind === "file" && !found.isFile()) {
      problems.push(source.problemAt(w.path, `${full} is not a file`));
    } else if (w.kind === "directory" && !found.isDirectory()) {
      problems.push(source.problemAt(w.path, `${full} is not a directory`));
    }
  }
  return problems;
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.line}:${p.column}:${p.path}:${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
