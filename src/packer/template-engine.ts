import { randomUUID } from "node:crypto";
import { didYouMean } from "../template/did-you-mean.js";
import { formatGoTime } from "./go-time.js";

/** What Packer's `{{ … }}` functions can see. */
export interface EngineScope {
  user: ReadonlyMap<string, string>;
  env: NodeJS.ProcessEnv;
  /** The build's clock: isotime and timestamp agree everywhere. */
  now: Date;
  buildName: string;
  buildType: string;
  /** Sensitive variables: a value computed from one is a secret too (registered by the caller). */
  sensitive?: ReadonlySet<string>;
  /** Set when the last action read a sensitive variable. */
  touchedSensitive?: boolean;
}

export class EngineError extends Error {}

const functionNames = ["user", "env", "isotime", "timestamp", "uuid", "build_name", "build_type", "clean_resource_name", "clean_ami_name", "split"];

/** A word of an action: a string or number literal, a name, or a parenthesized pipeline. */
type Word = { kind: "literal"; value: string } | { kind: "name"; value: string } | { kind: "group"; value: Command[] };
type Command = Word[];

/** `{{ isotime "2006-01-02" | clean_resource_name }}`: commands separated by pipes, each words. */
function parsePipeline(source: string, whole: string): Command[] {
  const commands: Command[] = [[]];
  let at = 0;
  const current = (): Command => commands[commands.length - 1] ?? [];
  while (at < source.length) {
    const c = source[at] ?? "";
    if (/\s/.test(c)) { at++; continue; }
    if (c === "|") { commands.push([]); at++; continue; }
    if (c === "(") {
      let depth = 0;
      let end = at;
      for (; end < source.length; end++) {
        if (source[end] === "(") depth++;
        if (source[end] === ")" && --depth === 0) break;
      }
      if (depth !== 0) throw new EngineError(`unbalanced ( in {{${whole}}}`);
      current().push({ kind: "group", value: parsePipeline(source.slice(at + 1, end), whole) });
      at = end + 1;
      continue;
    }
    if (c === "`") {
      const close = source.indexOf("`", at + 1);
      if (close < 0) throw new EngineError(`unterminated \` string in {{${whole}}}`);
      current().push({ kind: "literal", value: source.slice(at + 1, close) });
      at = close + 1;
      continue;
    }
    if (c === "\"") {
      const m = /^"((?:[^"\\]|\\.)*)"/.exec(source.slice(at));
      if (m === null) throw new EngineError(`unterminated " string in {{${whole}}}`);
      current().push({ kind: "literal", value: JSON.parse(m[0]) as string });
      at += m[0].length;
      continue;
    }
    const m = /^[^\s|()]+/.exec(source.slice(at))?.[0] ?? c;
    current().push(/^-?\d+$/.test(m) ? { kind: "literal", value: m } : { kind: "name", value: m });
    at += m.length;
  }
  if (commands.some((command) => command.length === 0)) throw new EngineError(`an empty command in {{${whole}}}`);
  return commands;
}

/**
 * Packer's clean_resource_name for AWS (and the older clean_ami_name): what an AMI name may
 * not hold becomes "-"; case and ( ) [ ] . / ' @ _ - and spaces stay.
 */
export function cleanResourceName(text: string): string {
  return text.replace(/[^A-Za-z0-9()[\] ./'@_-]/g, "-");
}

function call(name: string, args: string[], scope: EngineScope): string {
  const need = (count: number): void => {
    if (args.length !== count) throw new EngineError(`${name} takes ${count} argument${count === 1 ? "" : "s"}, not ${args.length}`);
  };
  switch (name) {
    case "user": {
      need(1);
      const value = scope.user.get(args[0] ?? "");
      if (value !== undefined && scope.sensitive?.has(args[0] ?? "") === true) scope.touchedSensitive = true;
      if (value === undefined) {
        const guess = didYouMean(args[0] ?? "", [...scope.user.keys()]);
        throw new EngineError(`unknown variable "${args[0] ?? ""}"${guess === undefined ? "" : ` (did you mean "${guess}"?)`}`);
      }
      return value;
    }
    case "env":
      need(1);
      return scope.env[args[0] ?? ""] ?? "";
    case "isotime":
      if (args.length > 1) need(1);
      return formatGoTime(scope.now, args[0] ?? "2006-01-02T15:04:05Z07:00");
    case "timestamp":
      need(0);
      return String(Math.floor(scope.now.getTime() / 1000));
    case "uuid":
      need(0);
      return randomUUID();
    case "build_name":
      need(0);
      return scope.buildName;
    case "build_type":
      need(0);
      return scope.buildType;
    case "clean_resource_name":
    case "clean_ami_name":
      need(1);
      return cleanResourceName(args[0] ?? "");
    case "split": {
      need(3);
      const parts = (args[0] ?? "").split(args[1] ?? "");
      const index = Number(args[2]);
      if (!Number.isInteger(index) || index < 0 || index >= parts.length) throw new EngineError(`split: index ${args[2] ?? ""} is out of range (${parts.length} parts)`);
      return parts[index] ?? "";
    }
    default: {
      const guess = didYouMean(name, functionNames);
      throw new EngineError(`unknown function "${name}"${guess === undefined ? "" : ` (did you mean "${guess}"?)`}`);
    }
  }
}

function evaluate(commands: Command[], scope: EngineScope): string {
  let piped: string | undefined;
  for (const command of commands) {
    const [head, ...rest] = command;
    const args = rest.map((w) => (w.kind === "group" ? evaluate(w.value, scope) : w.value));
    if (head?.kind === "literal" && rest.length === 0 && piped === undefined) piped = head.value; // {{"{{"}}
    else if (head?.kind === "group" && rest.length === 0) piped = evaluate(head.value, scope);
    else if (head?.kind === "name") piped = call(head.value, [...args, ...(piped === undefined ? [] : [piped])], scope);
    else throw new EngineError("expected a function name");
  }
  return piped ?? "";
}

// `{{- x -}}` trims the whitespace around the action, as in Go. A `{{ .Path }}`-style action is
// a placeholder of a provisioner (or a builder) that kiln fills in later: left as it is.
const action = /(\s*)\{\{(-?)\s*([\s\S]*?)\s*(-?)\}\}(\s*)/g;
const placeholder = /^\.[A-Za-z]\w*$/;

function each(text: string, render: (source: string) => string): string {
  return text.replace(action, (whole: string, before: string, trimBefore: string, source: string, trimAfter: string, after: string) => {
    if (placeholder.test(source)) return whole;
    return `${trimBefore === "-" ? "" : before}${render(source)}${trimAfter === "-" ? "" : after}`;
  });
}

/**
 * Renders one string of a Packer template: every `{{ … }}` action (functions, string and
 * number literals, parenthesized pipelines, pipes that pass a result on as the last
 * argument). Throws EngineError naming the unknown function or variable. `secret` receives
 * every result computed from a sensitive variable, so the caller can hide it too.
 */
export function renderPacker(text: string, scope: EngineScope, secret?: (value: string) => void): string {
  return each(text, (source) => {
    scope.touchedSensitive = false;
    const value = evaluate(parsePipeline(source, source), scope);
    if ((scope.touchedSensitive as boolean)) secret?.(value);
    return value;
  });
}

/**
 * The same string as a kiln expression where kiln has the function (`${{ var.x }}`,
 * `${{ env.X }}`, `${{ timestamp }}`, `${{ uuid }}`, `${{ isotime "…" }}`), for `kiln convert`;
 * anything else is evaluated now, and `evaluated` says so.
 */
export function translatePacker(text: string, scope: EngineScope, evaluated: (action: string) => void, envBacked: ReadonlyMap<string, string> = new Map()): string {
  return each(text, (source) => {
    const commands = parsePipeline(source, source);
    const only = commands.length === 1 ? commands[0] : undefined;
    const [head, ...rest] = only ?? [];
    const arg = rest[0]?.kind === "literal" ? rest[0].value : undefined;
    const fn = head?.kind === "name" ? head.value : undefined;
    // A variable whose default is only the environment reads it directly (its value is never written out).
    if (fn === "user" && arg !== undefined && rest.length === 1) return envBacked.has(arg) ? `\${{ env.${envBacked.get(arg) ?? ""} }}` : `\${{ var.${arg} }}`;
    if (fn === "env" && arg !== undefined && rest.length === 1) return `\${{ env.${arg} }}`;
    if ((fn === "timestamp" || fn === "uuid") && rest.length === 0) return `\${{ ${fn} }}`;
    if (fn === "isotime" && rest.length <= 1 && (rest.length === 0 || arg !== undefined)) return `\${{ isotime ${JSON.stringify(arg ?? "2006-01-02T15:04:05Z07:00")} }}`;
    scope.touchedSensitive = false;
    const value = evaluate(commands, scope);
    // kiln convert prints its result: a value made from a secret would be printed.
    if (scope.touchedSensitive) throw new EngineError(`{{${source}}} uses a sensitive variable and kiln cannot express it: convert would print its value`);
    evaluated(source);
    return value;
  });
}
