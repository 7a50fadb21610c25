import type { Command } from "commander";
import { templateJsonSchema } from "../../template/schema.js";
import type { CliContext } from "../io.js";

export function schemaCommand(program: Command, { io }: CliContext): void {
  program.command("schema")
    .description("print the template's JSON Schema (kiln schema > kiln.schema.json, for editor completion)")
    .action(() => io.out(JSON.stringify(templateJsonSchema(), null, 2)));
}
