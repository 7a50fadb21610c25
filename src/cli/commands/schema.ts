import type { Command } from "commander";
import { templateJsonSchema } from "../../template/schema.js";
import type { CliIo } from "../io.js";

export function schemaCommand(program: Command, io: CliIo): void {
  program.command("schema")
    .description("print the template's JSON Schema (kiln schema > kiln.schema.json, for editor completion)")
    .action(() => io.out(JSON.stringify(templateJsonSchema(), null, 2)));
}
