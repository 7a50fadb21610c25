import { builderKind } from "../builders/registry.js";
import type { StepPlan } from "../pipeline/step.js";
import type { LoadedTemplate } from "../template/load.js";
import { builderLabel } from "../template/schema.js";

export type PlannedStep = StepPlan & { step: string };

export interface BuilderPlan {
  builder: string;
  type: string;
  steps: PlannedStep[];
  /** What cleanup removes, in its order. */
  cleanup: string[];
  /** What the build leaves: its artifacts. */
  remains: string[];
  /** Read-only calls made for this plan, or why they were skipped. */
  lookups: string[];
}

/**
 * What `kiln build` would do, without creating anything: for each builder every step in
 * order (each step says its own calls and what it creates, with tags), what cleanup removes and
 * what remains. With credentials, the read-only lookups (caller identity, source image, the
 * image name) are made.
 */
export async function planTemplate(loaded: LoadedTemplate, probe: boolean, profile?: string): Promise<BuilderPlan[]> {
  const plans: BuilderPlan[] = [];
  for (const [i, builder] of loaded.template.builders.entries()) {
    const runtime = await builderKind(builder).load();
    plans.push(await runtime.plan(loaded, builder, builderLabel(loaded.template, i), { probe, profile }));
  }
  return plans;
}

/** The plan as text, one block per builder. */
export function planText(plans: readonly BuilderPlan[]): string {
  const lines: string[] = [];
  for (const plan of plans) {
    lines.push(`builder ${plan.builder} (${plan.type})`, `  lookups: ${plan.lookups.join("; ")}`);
    for (const [i, s] of plan.steps.entries()) {
      lines.push(`  ${i + 1}/${plan.steps.length} ${s.step}${s.note === undefined ? "" : `: ${s.note}`}`);
      for (const c of s.calls) lines.push(`      call    ${c}`);
      for (const r of s.creates) lines.push(`      creates ${r.type} ${r.name}${r.tags === undefined ? "" : ` [${Object.entries(r.tags).map(([k, v]) => `${k}=${v}`).join(", ")}]`}`);
    }
    lines.push("  cleanup removes:", ...plan.cleanup.map((c) => `    - ${c}`), "  remains:", ...plan.remains.map((r) => `    - ${r}`));
  }
  return lines.join("\n");
}

