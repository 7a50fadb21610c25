import type { StepContext } from "../../pipeline/step.js";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";
import type { AwsClients } from "./aws-clients.js";
import type { BuildJournal, JournalEntry } from "./journal.js";
import { removeResource } from "./resource-removal.js";

export interface Tracking {
  aws: AwsClients;
  journal: BuildJournal;
  builder: AmazonEbsBuilderConfig;
}

/**
 * Called the moment a create call returns: the resource goes into the journal on disk before
 * the build goes on, and its undo (remove it, then forget it) is registered. Temporary
 * resources are always undone; the image only when the build fails.
 */
export async function track(ctx: StepContext, { aws, journal, builder }: Tracking, entry: JournalEntry, description: string): Promise<void> {
  await journal.record(entry);
  const undo = async (signal: AbortSignal): Promise<void> => {
    await removeResource(aws, entry, { signal, report: ctx.report, delaySeconds: builder.wait.delay_seconds, timeoutSeconds: builder.wait.timeout_seconds });
    await journal.forget(entry.type, entry.id);
  };
  if (entry.temporary) ctx.cleanup.defer(description, undo);
  else ctx.cleanup.deferOnFailure(description, undo);
}
