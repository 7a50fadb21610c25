import type { Baseline } from "../audit/judging/baseline.js";
import type { AuditResult } from "../audit/report/audit-result.js";
import type { Severity } from "../audit/rules.js";
import { awsClients, buildRegion } from "../builders/amazon-ebs/aws-clients.js";
import { ebsClient } from "./ebs-client.js";
import { RateBudget } from "./rate-budget.js";
import { auditSnapshot, imageSnapshots } from "./share-gate.js";

/**
 * `kiln audit ami-…` / `snap-…`: any image these credentials can read, by anyone, audited from
 * its snapshots' blocks read back (nothing launched, no volume attached): one report per
 * snapshot, each the raw-image audit a disk file gets.
 */
export async function auditRemoteImage(id: string, options: { region?: string | undefined; profile?: string | undefined; failOn: Severity; baseline?: Baseline | undefined; signal: AbortSignal; progress: (line: string) => void }): Promise<(AuditResult & { readSeconds: number; readBytes: number })[]> {
  const clients = awsClients({ region: await buildRegion({ region: options.region, profile: options.profile }), profile: options.profile });
  const ebs = ebsClient(clients.region, options.profile);
  const budget = new RateBudget(32);
  try {
    const snapshots = id.startsWith("snap-") ? [{ device: "snapshot", snapshotId: id }] : await imageSnapshots(clients, id, options.signal);
    const results = [];
    for (const { device, snapshotId } of snapshots) {
      options.progress(`reading ${snapshotId}${device === "snapshot" ? "" : ` (${device} of ${id})`} in ${clients.region} through the EBS direct APIs`);
      results.push(await auditSnapshot(ebs, snapshotId, budget, options));
    }
    return results;
  } finally {
    ebs.destroy();
  }
}
