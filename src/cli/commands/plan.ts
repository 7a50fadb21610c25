import type { Command } from "commander";
import { stringify } from "yaml";
import { planTemplate, planText } from "../../plan/plan.js";
import type { CliContext } from "../io.js";
import { loadFromCli, withTemplateOptions, type TemplateOptions } from "../shared-options.js";
import type { LoadedTemplate } from "../../template/load.js";

export function planCommand(program: Command, { io, redactor, json }: CliContext): void {
  withTemplateOptions(program.command("plan").argument("<template>", "template file (kiln YAML/JSON, or Packer JSON)"))
    .description("show every step a build would take, the cloud calls and resources (with tags), what cleanup removes and what remains; creates nothing")
    .option("--offline", "make no call at all (not even the read-only lookups)")
    .action(async (file: string, options: TemplateOptions & { offline?: boolean }) => {
      const loaded = await loadFromCli(file, options, redactor, (line) => io.err(line));
      await printPlan(loaded, { json: options.json === true, offline: options.offline === true }, io.out, json);
    });
}

/** The resolved configuration, then the plan of each builder (`kiln plan`, `kiln build --plan`). */
export async function printPlan(loaded: LoadedTemplate, options: { json: boolean; offline: boolean; profile?: string }, out: (text: string) => void, json: (value: unknown) => void): Promise<void> {
  const plans = await planTemplate(loaded, !options.offline, options.profile);
  const { name, builders, provisioners, harden, clean } = loaded.template;
  if (options.json) {
    json({ name, configuration: { builders, provisioners, harden, clean }, plans });
    return;
  }
  out(`# ${loaded.file}: the resolved configuration\n${stringify({ name, builders, provisioners }, { lineWidth: 0 }).trimEnd()}\n\n# the plan (nothing has been created)\n${planText(plans)}`);
}
