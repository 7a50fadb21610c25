import type { Command } from "commander";
import { loadFromCli, withTemplateOptions, type TemplateOptions } from "../shared-options.js";
import type { CliContext } from "../io.js";

export function validateCommand(program: Command, { io, redactor }: CliContext): void {
  withTemplateOptions(program.command("validate").argument("<template>", "template file (YAML or JSON)"))
    .description("check a template without building anything")
    .action(async (file: string, options: TemplateOptions) => {
      const loaded = await loadFromCli(file, options, redactor, (line) => io.err(line));
      const { builders, provisioners } = loaded.template;
      const summary = { file, valid: true, builders: builders.length, provisioners: provisioners.length };
      io.out(options.json === true ? JSON.stringify(summary)
        : `${file}: valid (${builders.length} builder${builders.length === 1 ? "" : "s"}, ${provisioners.length} provisioner${provisioners.length === 1 ? "" : "s"})`);
    });
}
