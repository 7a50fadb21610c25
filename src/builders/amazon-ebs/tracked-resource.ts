import { CancelledError } from "../../errors.js";
import type { StepContext } from "../../pipeline/step.js";
import type { ImageSettings } from "./image-settings.js";
import { type AwsClients } from "./aws-clients.js";
import { aws, awsCode } from "./aws-errors.js";
import type { BuildJournal, JournalEntry } from "./journal.js";
import { removeResource } from "./resource-removal.js";
import { waitPolicy } from "./wait-policy.js";

export interface Tracking {
  aws: AwsClients;
  journal: BuildJournal;
  builder: Pick<ImageSettings, "wait" | "aws_polling">;
}

/**
 * Called the moment a create call returns: the undo (remove it, then forget it) is registered
 * first, then the resource goes into the journal on disk before the build goes on. Temporary
 * resources are always undone; the image only when the build fails. A Ctrl-C that came while
 * the create call ran is honoured here, once the resource is known.
 */
export async function track(ctx: StepContext, { aws: clients, journal, builder }: Tracking, made: JournalEntry, description: string): Promise<void> {
  const entry: JournalEntry = { ...made, createdAt: new Date().toISOString() };
  const undo = async (signal: AbortSignal): Promise<void> => {
    // Removed already along with another (an image with its snapshots' undo): nothing to do.
    if (!journal.holds(entry.type, entry.id)) return;
    await removeResource(clients, entry, { signal, report: ctx.report, ...waitPolicy(builder, "instance") });
    await journal.forget(entry.type, entry.id);
  };
  if (entry.temporary) ctx.cleanup.defer(description, undo);
  else ctx.cleanup.deferOnFailure(description, undo);
  await journal.record(entry);
  if (ctx.signal.aborted) throw new CancelledError();
}

/**
 * A call that creates something. It is not aborted by Ctrl-C (a request cut off mid-flight may
 * still create a resource nobody would record); it has its own deadline instead, and `track`
 * honours the Ctrl-C right after. When its answer was lost and the SDK's retry meets the
 * resource already there (`duplicate` matches the error code), the one this build made is
 * adopted: `findOurs` looks it up by name and proves it by its `kiln:build-id` tag.
 */
export async function createResource<T>(doing: string, call: (signal: AbortSignal) => Promise<T>, adopt?: { duplicate: string; findOurs: () => Promise<T | undefined> }): Promise<T> {
  const signal = AbortSignal.timeout(5 * 60_000);
  try {
    return await aws(doing, () => call(signal), signal);
  } catch (error) {
    if (adopt === undefined || awsCode(error) !== adopt.duplicate) throw error;
    const ours = await adopt.findOurs();
    if (ours === undefined) throw error;
    return ours;
  }
}

/** Whether tags (EC2's or IAM's) say a resource belongs to this build. */
export function ownedBy(buildId: string, tags: readonly { Key?: string | undefined; Value?: string | undefined }[] | undefined): boolean {
  return tags?.some((t) => t.Key === "kiln:build-id" && t.Value === buildId) ?? false;
}
