import type { Command } from "commander";
import { stringify } from "yaml";
import { loadFromCli, withTemplateOptions, type TemplateOptions } from "../shared-options.js";
import type { CliContext } from "../io.js";

export function inspectCommand(program: Command, { io, redactor, json }: CliContext): void {
  withTemplateOptions(program.command("inspect").argument("<template>", "template file (YAML or JSON)"))
    .description("print the resolved variables, builders and provisioners of a template")
    .action(async (file: string, options: TemplateOptions) => {
      const loaded = await loadFromCli(file, options, redactor, (line) => io.err(line));
      const variables: Record<string, unknown> = {};
      for (const [name, v] of loaded.variables) {
        variables[name] = { value: v.sensitive ? "[sensitive]" : v.value, source: v.source };
      }
      const { name, builders, provisioners, clean, output } = loaded.template;
      const resolved = { name, variables, builders, provisioners, clean, output };
      if (options.json === true) json(resolved);
      else io.out(stringify(resolved).trimEnd());
    });
}
