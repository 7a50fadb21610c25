import type { Baseline } from "../audit/judging/baseline.js";
import type { Severity } from "../audit/rules.js";
import { awsClients, buildRegion } from "../builders/amazon-ebs/aws-clients.js";
import { auditImageSnapshots, type SnapshotAudit } from "./share-gate.js";

/**
 * `kiln audit ami-…` / `snap-…`: any image these credentials can read, by anyone, audited from
 * its snapshots' blocks read back (nothing launched, no volume attached): one report per
 * snapshot, each the raw-image audit a disk file gets.
 */
export async function auditRemoteImage(id: string, options: { region?: string | undefined; profile?: string | undefined; failOn: Severity; baseline?: Baseline | undefined; signal: AbortSignal; progress: (line: string) => void }): Promise<SnapshotAudit[]> {
  const clients = awsClients({ region: await buildRegion({ region: options.region, profile: options.profile }), profile: options.profile });
  return auditImageSnapshots(clients, id, {
    ...options,
    starting: ({ device, snapshotId }) => options.progress(`reading ${snapshotId}${device === "snapshot" ? "" : ` (${device} of ${id})`} in ${clients.region} through the EBS direct APIs`),
  });
}
