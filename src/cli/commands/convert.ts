import type { Command } from "commander";
import { stringify } from "yaml";
import { convertPacker, isPackerTemplate } from "../../packer/packer-template.js";
import { ConfigError, UsageError } from "../../errors.js";
import { SourceDocument } from "../../template/source-document.js";
import type { CliContext } from "../io.js";
import { builderList, type TemplateOptions } from "../shared-options.js";

export function convertCommand(program: Command, { io }: CliContext): void {
  program.command("convert").argument("<template>", "a Packer JSON template")
    .description("print the kiln YAML template equivalent to a Packer JSON template")
    .option("--only <builders>", "only these builders (comma-separated names or types)")
    .option("--except <builders>", "leave these builders out")
    .action(async (file: string, options: Pick<TemplateOptions, "only" | "except">) => {
      const source = await SourceDocument.read(file);
      if (!isPackerTemplate(source.document.toJS(), source.text)) throw new UsageError(`${file} is already a kiln template (it has a name)`, "kiln convert reads Packer JSON templates");
      const converted = await convertPacker(source, file, { env: process.env, now: new Date(), mode: "translate", only: builderList(options.only) ?? [], except: builderList(options.except) ?? [] });
      if (converted.problems.length > 0) throw new ConfigError(converted.problems);
      for (const warning of converted.warnings) io.err(`warning: ${warning}`);
      io.out(`# converted by kiln from ${file}; paths stay relative to the template's directory\n${stringify(converted.template, { lineWidth: 0 }).trimEnd()}`);
    });
}
