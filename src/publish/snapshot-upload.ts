import type { FileHandle } from "node:fs/promises";
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand, type EBSClient } from "@aws-sdk/client-ebs";
import { KilnError } from "../errors.js";
import { megabytes } from "../report/format.js";
import { classify, retried, runPool } from "./block-pool.js";
import type { RateBudget } from "./rate-budget.js";
import { blockDigest, linearChecksum, readBlock, snapshotBlockBytes } from "./snapshot-blocks.js";

export interface SnapshotStart {
  volumeGiB: number;
  description: string;
  tags: { Key: string; Value: string }[];
  /** Idempotency: a StartSnapshot retried after a lost answer returns the same snapshot. */
  clientToken: string;
  kmsKeyArn?: string | undefined;
  /** Minutes a pending snapshot may go without a block or a completion before AWS cancels it (10–4320). */
  timeoutMinutes: number;
}

/** A new, empty, pending snapshot to put blocks into. */
export async function startSnapshot(ebs: EBSClient, start: SnapshotStart, budget: RateBudget, signal: AbortSignal): Promise<string> {
  const answer = await retried("starting a snapshot (ebs:StartSnapshot)", budget, signal, (abortSignal) => ebs.send(new StartSnapshotCommand({
    VolumeSize: start.volumeGiB, Description: start.description, Tags: start.tags, ClientToken: start.clientToken, Timeout: start.timeoutMinutes,
    ...(start.kmsKeyArn === undefined ? {} : { Encrypted: true, KmsKeyArn: start.kmsKeyArn }),
  }), { abortSignal }));
  if (answer.BlockSize !== undefined && answer.BlockSize !== snapshotBlockBytes) {
    throw new KilnError("KILN_EBS_BLOCK_SIZE", `EBS answered a block size of ${answer.BlockSize} bytes for snapshot ${answer.SnapshotId ?? "?"}; kiln writes ${snapshotBlockBytes}-byte blocks`, { hint: "report this: the EBS direct APIs have only ever used 512 KiB blocks" });
  }
  return answer.SnapshotId ?? "";
}

export interface UploadJob {
  ebs: EBSClient;
  snapshotId: string;
  disk: { handle: FileHandle; bytes: number };
  /** The blocks to send, in order (those that may hold data). */
  blocks: readonly number[];
  /** Blocks an earlier run put already (a resumed upload): index → digest. */
  done: Map<number, Buffer>;
  budget: RateBudget;
  signal: AbortSignal;
  /** A line every few seconds: MB sent, MB/s, ETA. */
  progress: (line: string) => void;
  /** Called now and then with every block put so far, to journal them for a resume. */
  checkpoint: (done: ReadonlyMap<number, Buffer>) => Promise<void>;
}

export interface UploadResult {
  /** Every block the snapshot holds (index → digest), this run's and earlier ones'. */
  digests: Map<number, Buffer>;
  /** Bytes this run sent, and how long it took. */
  sentBytes: number;
  seconds: number;
  /** Blocks read and found all zeros: never sent. */
  zeroBlocks: number;
}

/**
 * Puts every non-zero block of the disk that an earlier run did not put: each with its SHA-256,
 * many at once under the shared budget, each retried on its own. Zero blocks are not sent (a
 * new snapshot reads as zeros wherever nothing was written).
 */
export async function putBlocks(job: UploadJob): Promise<UploadResult> {
  const started = Date.now();
  const digests = new Map(job.done);
  const todo = job.blocks.filter((i) => !digests.has(i));
  let sentBytes = 0;
  let zeroBlocks = 0;
  let handled = 0;
  let lastLine = started;
  let lastCheckpoint = started;
  let saving: Promise<void> = Promise.resolve();
  const tick = (): void => {
    handled++;
    const now = Date.now();
    if (now - lastCheckpoint > 2000) {
      lastCheckpoint = now;
      const snapshot = new Map(digests);
      saving = saving.then(() => job.checkpoint(snapshot));
    }
    if (now - lastLine < 5000) return;
    lastLine = now;
    const rate = sentBytes / Math.max((now - started) / 1000, 0.001);
    const left = (todo.length - handled) * snapshotBlockBytes * (sentBytes / Math.max(handled * snapshotBlockBytes, 1));
    job.progress(`sent ${megabytes(sentBytes)} (${handled}/${todo.length} blocks), ${(rate / 1e6).toFixed(1)} MB/s, about ${Math.ceil(left / Math.max(rate, 1))}s left${job.budget.throttled > 0 ? `, ${job.budget.limit} at once after ${job.budget.throttled} throttling answers` : ""}`);
  };
  await runPool(todo, async (index, signal) => {
    const block = await readBlock(job.disk.handle, job.disk.bytes, index);
    if (block === undefined) {
      zeroBlocks++;
      tick();
      return;
    }
    const digest = blockDigest(block);
    await job.ebs.send(new PutSnapshotBlockCommand({
      SnapshotId: job.snapshotId, BlockIndex: index, BlockData: block, DataLength: block.length, Checksum: digest.toString("base64"), ChecksumAlgorithm: "SHA256",
    }), { abortSignal: signal });
    digests.set(index, digest);
    sentBytes += block.length;
    tick();
  }, { budget: job.budget, signal: job.signal, doing: (index) => `putting block ${index} of the disk into snapshot ${job.snapshotId} (ebs:PutSnapshotBlock)` });
  await saving;
  await job.checkpoint(digests);
  return { digests, sentBytes, seconds: (Date.now() - started) / 1000, zeroBlocks };
}

/** Seals the snapshot: AWS checks the block count and the linear checksum of all blocks, then makes it completed. */
export async function completeSnapshot(ebs: EBSClient, snapshotId: string, digests: ReadonlyMap<number, Buffer>, budget: RateBudget, signal: AbortSignal): Promise<void> {
  let sent = false;
  await retried(`completing snapshot ${snapshotId} (ebs:CompleteSnapshot)`, budget, signal, async (abortSignal) => {
    try {
      await ebs.send(new CompleteSnapshotCommand({
        SnapshotId: snapshotId, ChangedBlocksCount: digests.size, Checksum: linearChecksum(digests), ChecksumAlgorithm: "SHA256", ChecksumAggregationMethod: "LINEAR",
      }), { abortSignal });
    } catch (error) {
      // An earlier try whose answer was lost went through: the snapshot is no longer pending, and
      // AWS refuses a second completion. The wait for `completed` that follows tells the outcome.
      if (sent && (error as { name?: string }).name === "ValidationException") return;
      if (classify(error) === "transient") sent = true;
      throw error;
    }
  });
}
