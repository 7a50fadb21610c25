import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2";
import { dataExtents } from "../../audit/sources/data-extents.js";
import { awsEventually } from "../../builders/amazon-ebs/aws-errors.js";
import { removeResource } from "../../builders/amazon-ebs/resource-removal.js";
import { pollUntil } from "../../builders/amazon-ebs/poll.js";
import { clientToken, kilnTags } from "../../builders/amazon-ebs/tags.js";
import { track } from "../../builders/amazon-ebs/tracked-resource.js";
import { waitPolicy } from "../../builders/amazon-ebs/wait-policy.js";
import { KilnError } from "../../errors.js";
import type { Step, StepContext } from "../../pipeline/step.js";
import { megabytes } from "../../report/format.js";
import { RateBudget } from "../rate-budget.js";
import { blockDigest, candidateBlocks, readBlock, snapshotBlockBytes, volumeGiB } from "../snapshot-blocks.js";
import { completeSnapshot, putBlocks, startSnapshot } from "../snapshot-upload.js";
import type { PublishAccess, PublishFacts, PublishRequest } from "./publish-request.js";
import { parseBlockRanges, blockRanges } from "./block-ranges.js";

export interface UploadedSnapshot {
  snapshotId: string;
  volumeGiB: number;
  /** This run's figures: bytes sent, seconds, zero blocks skipped, throttling answers. */
  sentBytes: number;
  seconds: number;
  throttled: number;
}

/**
 * The disk into a new EBS snapshot, block by block (EBS direct APIs): started tagged with the
 * build id and journaled before the first block; non-zero blocks put many at once, the blocks
 * done journaled every few seconds (a crash resumes from there); completed with the linear
 * checksum; waited for until `completed`. Undone (deleted) if the publish fails.
 */
export const uploadSnapshot: Step<PublishRequest & PublishAccess, { snapshot: UploadedSnapshot }, PublishFacts> = {
  name: "upload snapshot",
  plan: ({ amazon }) => ({
    calls: ["ebs:StartSnapshot", "ebs:PutSnapshotBlock × each non-zero 512 KiB block", "ebs:CompleteSnapshot (linear SHA-256)", "ec2:DescribeSnapshots until completed (read-only)"],
    creates: [{ type: "snapshot", name: `${amazon.name} root volume`, tags: Object.fromEntries(kilnTags("<build id>", "<version>", amazon.tags).map((t) => [t.Key, t.Value])) }],
    note: `at most ${amazon.max_concurrency} blocks at once, fewer when AWS throttles${amazon.kms_key_id === undefined ? "" : `; encrypted with ${amazon.kms_key_id}`}`,
  }),
  run: async (ctx, input) => {
    const { disk, ebs, journal, amazon, buildId } = input;
    // Never through a link, and the very file that was hashed (a rename over it would be another inode).
    const handle = await open(disk.path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const opened = await handle.stat();
      const size = opened.size;
      const other = disk.identity !== undefined && (opened.dev !== disk.identity.dev || opened.ino !== disk.identity.ino);
      if (size !== disk.bytes || other) throw new KilnError("KILN_PUBLISH_MISMATCH", `${disk.path} is ${other ? "another file" : `${size} bytes`} now, not the one checked (${disk.bytes} bytes, sha256 ${disk.sha256})`, { hint: "do not change or replace the disk while kiln publishes it" });
      const budget = new RateBudget(amazon.max_concurrency);
      const gib = volumeGiB(size);
      const resumed = journal.upload;
      let snapshotId: string;
      const done = new Map<number, Buffer>();
      if (resumed !== undefined) {
        if (resumed.sha256 !== disk.sha256) throw new KilnError("KILN_PUBLISH_RESUME", `the upload to resume (${resumed.snapshotId}) was of a disk with sha256 ${resumed.sha256}, and ${disk.path} has ${disk.sha256}`, { hint: `remove it with kiln cleanup ${buildId} and publish again` });
        snapshotId = resumed.snapshotId;
        await pendingSnapshot(ctx, input, snapshotId);
        // The digests of blocks put before the crash come from the disk (the same bytes: its sha256 matches).
        for (const index of parseBlockRanges(resumed.done, Math.ceil(size / snapshotBlockBytes))) {
          const block = await readBlock(handle, size, index);
          if (block !== undefined) done.set(index, blockDigest(block));
        }
        ctx.report.info(`resuming the upload into ${snapshotId}: ${done.size} blocks were put before`);
        // Journaled already (by the run that crashed): only its undo is this run's to register.
        ctx.cleanup.deferOnFailure(`delete snapshot ${snapshotId}`, async (signal) => {
          await removeResource(input.aws, { type: "snapshot", id: snapshotId }, { signal, report: ctx.report, ...waitPolicy(input.settings, "instance") });
          await journal.forget("snapshot", snapshotId);
        });
      } else {
        snapshotId = await startSnapshot(ebs, {
          volumeGiB: gib, description: `${amazon.name}: ${disk.path.slice(disk.path.lastIndexOf("/") + 1)} sha256 ${disk.sha256}`.slice(0, 255),
          tags: kilnTags(buildId, input.kilnVersion, amazon.tags), clientToken: clientToken(buildId, "snapshot"), kmsKeyArn: amazon.kms_key_id, timeoutMinutes: 1440,
        }, budget, ctx.signal);
        await track(ctx, { aws: input.aws, journal, builder: input.settings }, { type: "snapshot", id: snapshotId, temporary: false }, `delete snapshot ${snapshotId}`);
        await journal.recordUpload({ disk: disk.path, sha256: disk.sha256, snapshotId, done: "" });
      }
      const blocks = candidateBlocks(size, await dataExtents(disk.path, ctx.signal));
      ctx.report.info(`uploading ${disk.path} (${megabytes(size)}, ${blocks.length} blocks hold data) into ${snapshotId} (${gib} GiB)`);
      const result = await putBlocks({
        ebs, snapshotId, disk: { handle, bytes: size }, blocks, done, budget, signal: ctx.signal,
        progress: (line) => ctx.report.info(line),
        checkpoint: (put) => journal.recordUpload({ disk: disk.path, sha256: disk.sha256, snapshotId, done: blockRanges(put.keys()) }),
      });
      await completeSnapshot(ebs, snapshotId, result.digests, budget, ctx.signal);
      await completedSnapshot(ctx, input, snapshotId);
      await journal.recordUpload(undefined);
      const rate = result.sentBytes / 1e6 / Math.max(result.seconds, 0.001);
      return {
        output: { snapshot: { snapshotId, volumeGiB: gib, sentBytes: result.sentBytes, seconds: result.seconds, throttled: budget.throttled } },
        summary: `${snapshotId}: ${result.digests.size} blocks (${megabytes(result.digests.size * snapshotBlockBytes)}) in ${result.seconds.toFixed(1)}s, ${rate.toFixed(1)} MB/s; ${Math.ceil(size / snapshotBlockBytes) - result.digests.size} zero blocks not sent${budget.throttled > 0 ? `; ${budget.throttled} throttling answers waited out` : ""}`,
      };
    } finally {
      await handle.close();
    }
  },
};

async function snapshotState(ctx: StepContext, input: PublishAccess, snapshotId: string): Promise<{ state: string; message: string }> {
  const found = await awsEventually(`describing snapshot ${snapshotId} (ec2:DescribeSnapshots)`, () => input.aws.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal: ctx.signal }), ctx.signal);
  const snapshot = found.Snapshots?.[0];
  return { state: snapshot?.State ?? "missing", message: snapshot?.StateMessage ?? "" };
}

/** A snapshot to resume must still be pending: AWS cancels one left without blocks for its timeout. */
async function pendingSnapshot(ctx: StepContext, input: PublishAccess & PublishRequest, snapshotId: string): Promise<void> {
  const { state, message } = await snapshotState(ctx, input, snapshotId);
  if (state !== "pending") {
    throw new KilnError("KILN_PUBLISH_RESUME", `snapshot ${snapshotId} cannot take more blocks: it is ${state}${message === "" ? "" : ` (${message})`}`, { hint: `remove it with kiln cleanup ${input.buildId}, then publish again without --resume` });
  }
}

/** After CompleteSnapshot AWS checks the blocks and the checksum: `completed`, or `error` when they do not add up. */
async function completedSnapshot(ctx: StepContext, input: PublishAccess, snapshotId: string): Promise<void> {
  await pollUntil(`snapshot ${snapshotId} to complete`, async () => {
    const { state, message } = await snapshotState(ctx, input, snapshotId);
    if (state === "error" || state === "missing") {
      throw new KilnError("KILN_EBS_SNAPSHOT", `snapshot ${snapshotId} ended in state ${state}${message === "" ? "" : `: ${message}`} (AWS checks the block count and the linear checksum when it completes)`, { hint: "publish again; if it fails the same way, report it with the disk's sha256" });
    }
    return state === "completed" ? true : undefined;
  }, { signal: ctx.signal, report: ctx.report, ...waitPolicy(input.settings, "image") });
}
