import { readFile } from "node:fs/promises";
import { resolve } from "node:path";

export interface ScriptSource {
  inline?: readonly string[] | undefined;
  script?: string | undefined;
  scripts?: readonly string[] | undefined;
}

/**
 * A provisioner's scripts: its inline lines as one script, or its script file(s), every file
 * read before the first runs (a missing third script fails before the first changes anything).
 */
export async function provisionerScripts(config: ScriptSource, templateDirectory: string): Promise<{ name: string; text: string }[]> {
  const files = config.scripts ?? (config.script === undefined ? [] : [config.script]);
  if (files.length === 0) return [{ name: "inline", text: `${(config.inline ?? []).join("\n")}\n` }];
  return Promise.all(files.map(async (name) => ({ name, text: await readFile(resolve(templateDirectory, name), "utf8") })));
}
