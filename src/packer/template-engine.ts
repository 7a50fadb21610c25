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
}

export class EngineError extends Error {}

const functionNames = ["user", "env", "isotime", "timestamp", "uuid", "build_name", "build_type", "clean_resource_name", "split"];

type Arg = { kind: "string" | "number"; value: string };

/** `{{ isotime "2006-01-02" | clean_resource_name }}`'s pieces: commands separated by pipes. */
function parseAction(source: string): { name: string; args: Arg[] }[] {
  const commands: { name: string; args: Arg[] }[] = [];
  let at = 0;
  const words: (Arg | { kind: "word"; value: string })[] = [];
  const flush = (): void => {
    const [head, ...rest] = words.splice(0);
    if (head === undefined || head.kind !== "word") throw new EngineError(`expected a function name in {{${source}}}`);
    commands.push({ name: head.value, args: rest.map((r) => (r.kind === "word" ? { kind: "string" as const, value: r.value } : r)) });
  };
  while (at < source.length) {
    const c = source[at] ?? "";
    if (/\s/.test(c)) { at++; continue; }
    if (c === "|") { flush(); at++; continue; }
    if (c === "`") {
      const end = source.indexOf("`", at + 1);
      if (end < 0) throw new EngineError(`unterminated \` string in {{${source}}}`);
      words.push({ kind: "string", value: source.slice(at + 1, end) });
      at = end + 1;
      continue;
    }
    if (c === "\"") {
      const m = /^"((?:[^"\\]|\\.)*)"/.exec(source.slice(at));
      if (m === null) throw new EngineError(`unterminated " string in {{${source}}}`);
      words.push({ kind: "string", value: JSON.parse(m[0]) as string });
      at += m[0].length;
      continue;
    }
    const m = /^[^\s|]+/.exec(source.slice(at))?.[0] ?? c;
    words.push(/^-?\d+$/.test(m) ? { kind: "number", value: m } : { kind: "word", value: m });
    at += m.length;
  }
  flush();
  return commands;
}

/** Packer's clean_resource_name: lower case, and every character an image name may not hold becomes "-". */
export function cleanResourceName(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9-]/g, "-");
}

function call(name: string, args: string[], scope: EngineScope): string {
  const need = (count: number): void => {
    if (args.length !== count) throw new EngineError(`${name} takes ${count} argument${count === 1 ? "" : "s"}, not ${args.length}`);
  };
  switch (name) {
    case "user": {
      need(1);
      const value = scope.user.get(args[0] ?? "");
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

/**
 * Renders one string of a Packer template: every `{{ … }}` action (functions, string and
 * number arguments, pipes that pass a result on as the last argument). Throws EngineError
 * naming the unknown function or variable.
 */
export function renderPacker(text: string, scope: EngineScope): string {
  return text.replace(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g, (_all, action: string) => {
    let piped: string | undefined;
    for (const { name, args } of parseAction(action)) {
      piped = call(name, [...args.map((a) => a.value), ...(piped === undefined ? [] : [piped])], scope);
    }
    return piped ?? "";
  });
}

/**
 * The same string as a kiln expression where kiln has the function (`${{ var.x }}`,
 * `${{ env.X }}`, `${{ timestamp }}`, `${{ uuid }}`, `${{ isotime "…" }}`), for `kiln convert`;
 * anything else is evaluated now, and `evaluated` says so.
 */
export function translatePacker(text: string, scope: EngineScope, evaluated: (action: string) => void, envBacked: ReadonlyMap<string, string> = new Map()): string {
  const translated = text.replace(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g, (_all, action: string) => {
    const commands = parseAction(action);
    const only = commands.length === 1 ? commands[0] : undefined;
    const arg = only?.args[0]?.value;
    // A variable whose default is only the environment reads it directly (its value is never written out).
    if (only?.name === "user" && arg !== undefined && only.args.length === 1) return envBacked.has(arg) ? `\${{ env.${envBacked.get(arg) ?? ""} }}` : `\${{ var.${arg} }}`;
    if (only?.name === "env" && arg !== undefined && only.args.length === 1) return `\${{ env.${arg} }}`;
    if ((only?.name === "timestamp" || only?.name === "uuid") && only.args.length === 0) return `\${{ ${only.name} }}`;
    if (only?.name === "isotime" && only.args.length <= 1) return `\${{ isotime ${JSON.stringify(arg ?? "2006-01-02T15:04:05Z07:00")} }}`;
    evaluated(action.trim());
    return renderPacker(`{{${action}}}`, scope);
  });
  return translated;
}
