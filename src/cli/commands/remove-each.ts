import type { AwsClients } from "../../builders/amazon-ebs/aws-clients.js";
import type { JournalEntry } from "../../builders/amazon-ebs/journal.js";
import { removeResource } from "../../builders/amazon-ebs/resource-removal.js";
import type { Reporter } from "../../report/reporter.js";
import { describeResource } from "./remove-resources.js";

/**
 * Removes each resource in the order given (a copy of an image in its own region), saying what went and what could not (and why);
 * one failure does not stop the rest. Returns how many could not be removed.
 */
export async function removeEach(clientsFor: (region: string | undefined) => AwsClients, resources: (Pick<JournalEntry, "type" | "id" | "region"> & { note?: string })[], report: Reporter, out: (line: string) => void): Promise<number> {
  let failed = 0;
  for (const r of resources) {
    // Each its own deadline: one that cannot go (a group still in use) does not starve the rest.
    const signal = AbortSignal.timeout(15 * 60_000);
    try {
      await removeResource(clientsFor(r.region), r, { signal, report, delaySeconds: 2, timeoutSeconds: 900 });
      out(`    removed ${describeResource(r, r.note)}`);
    } catch (error) {
      failed++;
      out(`    could not remove ${describeResource(r, r.note)}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return failed;
}
