import { DescribeImagesCommand, GetImageBlockPublicAccessStateCommand } from "@aws-sdk/client-ec2";
import type { EBSClient } from "@aws-sdk/client-ebs";
import { auditImage } from "../audit/audit-image.js";
import type { Baseline } from "../audit/judging/baseline.js";
import { auditFails, type AuditResult } from "../audit/report/audit-result.js";
import { atLeast, type Severity } from "../audit/rules.js";
import type { AwsClients } from "../builders/amazon-ebs/aws-clients.js";
import { aws, awsCode } from "../builders/amazon-ebs/aws-errors.js";
import { KilnError } from "../errors.js";
import { RateBudget } from "./rate-budget.js";
import { ebsClient } from "./ebs-client.js";
import { renderTextReport } from "../audit/report/text-report.js";
import type { Redactor } from "../report/redact.js";
import { readSnapshot } from "./snapshot-readback.js";

/** Who an image is about to be shared with. */
export interface Audience {
  /** Account ids given launch permission. */
  users: readonly string[];
  /** Anyone (launch permission group all). */
  public: boolean;
}

/** Whether sharing reaches beyond the image's own account: then the gate audits first. */
export function leavesAccount(audience: Audience): boolean {
  return audience.public || audience.users.length > 0;
}

export function describeAudience(audience: Audience): string {
  return [...(audience.public ? ["everyone (public)"] : []), ...audience.users.map((u) => `account ${u}`)].join(", ");
}

export interface GateOptions {
  failOn: Severity;
  /** Accepted findings (--accept-findings): the only way past a finding. */
  baseline?: Baseline | undefined;
  signal: AbortSignal;
  progress: (line: string) => void;
  tempDirectory?: string | undefined;
}

/**
 * The account's block-public-access setting for images, read before anything is uploaded or
 * shared: with `block-new-sharing` AWS refuses to make an image public, and saying so at the
 * start beats failing after an upload of many minutes. Credentials that may not read it leave
 * the decision to AWS (a warning, not a stop).
 */
export async function checkPublicSharingAllowed(clients: AwsClients, signal: AbortSignal, warn: (line: string) => void): Promise<void> {
  let state: string | undefined;
  try {
    state = (await aws(`reading the image block-public-access state of ${clients.region} (ec2:GetImageBlockPublicAccessState)`, () => clients.ec2.send(new GetImageBlockPublicAccessStateCommand({}), { abortSignal: signal }), signal)).ImageBlockPublicAccessState;
  } catch (error) {
    if (signal.aborted) throw error;
    warn(`could not read whether ${clients.region} blocks public images (${awsCode(error) || "error"}): AWS decides when the image is shared`);
    return;
  }
  if (state === "block-new-sharing") {
    throw new KilnError("KILN_PUBLIC_BLOCKED", `the account blocks public images in ${clients.region} (image block public access: block-new-sharing), so the image cannot be made public`, {
      hint: `if it is meant to be public, an administrator turns the block off with: aws ec2 disable-image-block-public-access --region ${clients.region} (it can take minutes to apply); or share it with accounts instead of publicly`,
    });
  }
}

/** The audit of the exact bytes about to be shared: a local disk file as it was uploaded. */
export async function auditDiskForSharing(path: string, options: GateOptions): Promise<AuditResult> {
  return auditImage(path, { failOn: options.failOn, signal: options.signal, progress: options.progress, ...(options.baseline === undefined ? {} : { baseline: options.baseline }), ...(options.tempDirectory === undefined ? {} : { tempDirectory: options.tempDirectory }) });
}

/** The EBS snapshots behind an image, by device. */
export async function imageSnapshots(clients: AwsClients, imageId: string, signal: AbortSignal): Promise<{ device: string; snapshotId: string }[]> {
  const image = (await aws(`describing image ${imageId} (ec2:DescribeImages)`, () => clients.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), { abortSignal: signal }), signal)).Images?.find((i) => i.ImageId === imageId);
  if (image === undefined) throw new KilnError("KILN_IMAGE_NOT_FOUND", `no image ${imageId} in ${clients.region} that these credentials can see`, { exitCode: 2, hint: "check the image id and the region (--region)" });
  const snapshots = (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId === undefined ? [] : [{ device: m.DeviceName ?? "?", snapshotId: m.Ebs.SnapshotId }]));
  if (snapshots.length === 0) throw new KilnError("KILN_IMAGE_NO_SNAPSHOT", `image ${imageId} has no EBS snapshot to read (an instance-store image?)`, { exitCode: 2, hint: "kiln audits EBS-backed images only" });
  return snapshots;
}

/**
 * The audit of a snapshot's bytes read back (nothing launched, no volume attached): the same
 * raw-image audit a disk file gets, over every block ever written, free space included.
 */
/** A snapshot's audit, and what reading it back took. */
export type SnapshotAudit = AuditResult & { readSeconds: number; readBytes: number };

export async function auditSnapshot(ebs: EBSClient, snapshotId: string, budget: RateBudget, options: GateOptions): Promise<SnapshotAudit> {
  const copy = await readSnapshot(ebs, snapshotId, { budget, signal: options.signal, progress: options.progress, ...(options.tempDirectory === undefined ? {} : { tempDirectory: options.tempDirectory }) });
  try {
    options.progress(`read ${copy.blocks} blocks of ${snapshotId} in ${copy.seconds.toFixed(1)}s; auditing them`);
    const result = await auditDiskForSharing(copy.path, options).catch((error: unknown) => {
      // What kiln cannot read it cannot vouch for: the gate fails closed.
      if (!(error instanceof KilnError) || !error.code.startsWith("KILN_AUDIT_")) throw error;
      throw new KilnError("KILN_SHARE_REFUSED", `snapshot ${snapshotId} cannot be audited: ${error.message.replace(/^.*snapshot\.raw /, "it ")}`, {
        exitCode: 1, hint: "kiln audits ext filesystems on a raw or GPT/MBR disk; an image it cannot read is not shared by kiln (share it yourself only if you have audited it another way)",
      });
    });
    return { ...result, image: snapshotId, format: `EBS snapshot (${copy.bytes / 1024 ** 3} GiB, ${copy.blocks} blocks written) — ${result.format}`, readSeconds: copy.seconds, readBytes: copy.blocks * copy.blockBytes };
  } finally {
    await copy.remove();
  }
}

/** Refuses the share when an audit fails: the findings were reported; this names the way past. */
export function refuseIfFailed(results: readonly AuditResult[], what: string, audience: Audience | "published"): void {
  const failed = results.filter(auditFails);
  if (failed.length === 0) return;
  // Only those that decide it: the info-level stock keys listed beside them are not "at or above".
  const count = failed.reduce((n, r) => n + r.findings.filter((f) => atLeast(f.severity, r.failOn)).length, 0);
  throw new KilnError("KILN_SHARE_REFUSED", `${what} was not ${audience === "published" ? "published" : `shared with ${describeAudience(audience)}`}: its audit found ${count} finding${count === 1 ? "" : "s"} at or above ${failed[0]?.failOn ?? "high"} (listed above)`, {
    hint: "remove what the findings name and build again; a finding that is truly harmless goes in a baseline file given as --accept-findings FILE (rule and path per entry)",
  });
}

/**
 * Each snapshot of an image (or the one snapshot a `snap-` id names) read back and audited, in
 * turn, under one budget: `kiln audit ami-…` and the gate before sharing an image already in AWS.
 */
export async function auditImageSnapshots(clients: AwsClients, id: string, options: GateOptions & { profile?: string | undefined; starting: (snapshot: { device: string; snapshotId: string }) => void; audited?: (result: SnapshotAudit) => void }): Promise<SnapshotAudit[]> {
  const ebs = ebsClient(clients.region, options.profile);
  const budget = new RateBudget(32);
  try {
    const snapshots = id.startsWith("snap-") ? [{ device: "snapshot", snapshotId: id }] : await imageSnapshots(clients, id, options.signal);
    const results: SnapshotAudit[] = [];
    for (const snapshot of snapshots) {
      options.starting(snapshot);
      const result = await auditSnapshot(ebs, snapshot.snapshotId, budget, options);
      options.audited?.(result);
      results.push(result);
    }
    return results;
  } finally {
    ebs.destroy();
  }
}

/**
 * The gate for an image already in AWS: each of its snapshots read back and audited, the
 * reports written through `report`, the share refused when one fails.
 */
export async function auditImageForSharing(clients: AwsClients, imageId: string, audience: Audience, options: GateOptions & { profile?: string | undefined; report: (line: string) => void; redactor: Redactor }): Promise<void> {
  const results = await auditImageSnapshots(clients, imageId, {
    ...options,
    starting: ({ device, snapshotId }) => options.report(`auditing ${device} (${snapshotId}) of ${imageId}, read back through the EBS direct APIs, before sharing it with ${describeAudience(audience)}`),
    audited: (result) => { for (const line of renderTextReport(result, { redactor: options.redactor, color: false })) options.report(line); },
  });
  refuseIfFailed(results, `image ${imageId}`, audience);
}
