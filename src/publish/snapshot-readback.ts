import { open, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetSnapshotBlockCommand, ListSnapshotBlocksCommand, type EBSClient, type GetSnapshotBlockCommandOutput } from "@aws-sdk/client-ebs";
import { KilnError } from "../errors.js";
import { megabytes } from "../report/format.js";
import { makePrivateDirectory } from "../system/private-directory.js";
import { retried, runPool } from "./block-pool.js";
import type { RateBudget } from "./rate-budget.js";
import { snapshotIdPattern } from "./remote-id.js";
import { blockDigest, snapshotBlockBytes } from "./snapshot-blocks.js";

/** A snapshot's bytes on this machine: written blocks where they lie, holes (zeros) elsewhere. */
export interface SnapshotCopy {
  path: string;
  bytes: number;
  blocks: number;
  blockBytes: number;
  seconds: number;
  remove: () => Promise<void>;
}

/** The largest EBS volume (io2 Block Express): 64 TiB. */
const maxVolumeGiB = 65_536;
/** How long one block's answer may take, headers to last byte, before it is tried again. */
const blockDeadlineMs = 120_000;

/**
 * Reads a completed snapshot back through the EBS direct APIs, nothing launched and no volume
 * attached: ListSnapshotBlocks names the blocks ever written (paged), GetSnapshotBlock fetches
 * them many at once under the shared budget, each checked against the SHA-256 AWS sends with
 * it. They land in a sparse file in a private directory, so the raw-image audit reads the
 * snapshot exactly as it reads a disk file: every written byte, free space included, and holes
 * (never written: zeros) costing nothing.
 *
 * Every answer is checked before it is used, as one from a hostile endpoint would be: the
 * volume and block size, each index inside the volume and listed once, the pages advancing, each
 * block exactly one block long with the SHA-256 AWS gives for it. A page's blocks are fetched
 * before the next page is listed, so memory stays that of one page however large the snapshot.
 */
export async function readSnapshot(ebs: EBSClient, snapshotId: string, options: { budget: RateBudget; signal: AbortSignal; tempDirectory?: string; progress: (line: string) => void; blockDeadlineMs?: number }): Promise<SnapshotCopy> {
  const started = Date.now();
  const { budget, signal } = options;
  if (!snapshotIdPattern.test(snapshotId)) throw answerError(snapshotId, "is not a snapshot id (snap- and 8 to 17 hexadecimal digits)", "give a snapshot id like snap-0123456789abcdef0");
  const list = (token: string | undefined, page: number): Promise<{ VolumeSize?: number | undefined; BlockSize?: number | undefined; Blocks?: { BlockIndex?: number | undefined; BlockToken?: string | undefined }[] | undefined; NextToken?: string | undefined }> =>
    retried(`listing the blocks of snapshot ${snapshotId} (ebs:ListSnapshotBlocks, page ${page})`, budget, signal, (abortSignal) => ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, MaxResults: 10_000, ...(token === undefined ? {} : { NextToken: token }) }), { abortSignal }));
  let answer = await list(undefined, 1);
  const volumeGiB = answer.VolumeSize;
  const blockBytes = answer.BlockSize;
  if (volumeGiB === undefined || blockBytes === undefined) throw new KilnError("KILN_EBS_SNAPSHOT", `snapshot ${snapshotId}: ebs:ListSnapshotBlocks gave no volume or block size`, { hint: "check that the snapshot is completed and that these credentials may read it" });
  if (!Number.isSafeInteger(volumeGiB) || volumeGiB < 1 || volumeGiB > maxVolumeGiB) throw answerError(snapshotId, `has a volume size of ${volumeGiB} GiB in the answer of ebs:ListSnapshotBlocks (EBS volumes are 1 to ${maxVolumeGiB} GiB)`);
  if (blockBytes !== snapshotBlockBytes) throw answerError(snapshotId, `has a block size of ${blockBytes} bytes in the answer of ebs:ListSnapshotBlocks (the EBS direct APIs use ${snapshotBlockBytes})`);
  const bytes = volumeGiB * 1024 ** 3;
  const volumeBlocks = bytes / blockBytes;
  const seen = new Uint8Array(Math.ceil(volumeBlocks / 8));
  const parent = options.tempDirectory ?? tmpdir();
  // A directory only we can change, in a parent no other user can rename things in: else another
  // user could swap the copy for bytes of their choosing between the read and the audit.
  const directory = await makePrivateDirectory(parent, "kiln-snapshot");
  const path = join(directory, "snapshot.raw");
  const remove = (): Promise<void> => rm(directory, { recursive: true, force: true });
  let blocks = 0;
  try {
    const file = await open(path, "wx", 0o600);
    try {
      await file.truncate(bytes).catch((error: NodeJS.ErrnoException) => {
        throw new KilnError("KILN_EBS_SNAPSHOT", `cannot make a sparse copy of ${volumeGiB} GiB for snapshot ${snapshotId} in ${parent}: ${error.code ?? error.message}`, { hint: "point TMPDIR at a file system that takes files this large (xfs, btrfs or ext4 up to 16 TiB)" });
      });
      let lastLine = Date.now();
      const tokens = new Set<string>();
      for (let page = 1; ; page++) {
        const pageBlocks: { index: number; token: string }[] = [];
        if (answer.VolumeSize !== volumeGiB || answer.BlockSize !== blockBytes) throw answerError(snapshotId, `changed its volume or block size on page ${page} of ebs:ListSnapshotBlocks`);
        for (const b of answer.Blocks ?? []) {
          const index = b.BlockIndex;
          if (index === undefined || b.BlockToken === undefined) continue;
          if (!Number.isSafeInteger(index) || index < 0 || index >= volumeBlocks) throw answerError(snapshotId, `has block ${index} in the answer of ebs:ListSnapshotBlocks, outside its ${volumeBlocks} blocks`);
          const bit = 1 << (index & 7);
          if (((seen[index >> 3] ?? 0) & bit) !== 0) throw answerError(snapshotId, `has block ${index} twice in the answers of ebs:ListSnapshotBlocks`);
          seen[index >> 3] = (seen[index >> 3] ?? 0) | bit;
          pageBlocks.push({ index, token: b.BlockToken });
        }
        if (page === 1) options.progress(`reading the written blocks of snapshot ${snapshotId} (${volumeGiB} GiB)`);
        await enoughSpace(parent, pageBlocks.length * blockBytes, snapshotId);
        await runPool(pageBlocks.map((_, i) => i), async (i, abortSignal) => {
          const { index, token } = pageBlocks[i] as { index: number; token: string };
          const data = await fetchBlock(ebs, snapshotId, index, token, blockBytes, abortSignal, options.blockDeadlineMs ?? blockDeadlineMs);
          await file.write(data, 0, data.length, index * blockBytes);
          blocks++;
          if (Date.now() - lastLine > 5000) {
            lastLine = Date.now();
            options.progress(`read ${blocks} blocks (${megabytes(blocks * blockBytes)}), ${((blocks * blockBytes) / 1e6 / ((Date.now() - started) / 1000)).toFixed(1)} MB/s`);
          }
        }, { budget, signal, doing: (i) => `reading block ${pageBlocks[i]?.index ?? "?"} of snapshot ${snapshotId} (ebs:GetSnapshotBlock)` });
        const token = answer.NextToken;
        if (token === undefined || token === "") break;
        // A page that names no new block, or a token met before, would page forever.
        if (pageBlocks.length === 0 || tokens.has(token)) throw answerError(snapshotId, `got a NextToken from ebs:ListSnapshotBlocks on page ${page} that does not advance (${pageBlocks.length === 0 ? "a page without blocks" : "a token given before"})`);
        tokens.add(token);
        answer = await list(token, page + 1);
      }
    } finally {
      await file.close();
    }
    options.progress(`read ${blocks} written block${blocks === 1 ? "" : "s"} (${megabytes(blocks * blockBytes)}) of snapshot ${snapshotId}`);
    return { path, bytes, blocks, blockBytes, seconds: (Date.now() - started) / 1000, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

/** One block, exactly `blockBytes` long and matching its SHA-256, within a deadline (a stalled answer is tried again). */
async function fetchBlock(ebs: EBSClient, snapshotId: string, index: number, token: string, blockBytes: number, signal: AbortSignal, deadlineMs: number): Promise<Buffer> {
  // A timer of our own (AbortSignal.timeout's does not keep the process alive while it waits).
  const timeout = new AbortController();
  const deadline = timeout.signal;
  const timer = setTimeout(() => timeout.abort(), deadlineMs);
  const both = AbortSignal.any([signal, deadline]);
  try {
    const answer = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockToken: token }), { abortSignal: both });
    const corrupt = (what: string): KilnError => new KilnError("KILN_EBS_BLOCK_CORRUPT", `block ${index} of snapshot ${snapshotId} came back ${what}`, { hint: "run it again; if it persists, the snapshot or the connection (a proxy?) is damaged" });
    if (answer.DataLength !== undefined && answer.DataLength !== blockBytes) throw corrupt(`announcing ${answer.DataLength} bytes, not ${blockBytes}`);
    if (answer.Checksum === undefined || (answer.ChecksumAlgorithm !== undefined && answer.ChecksumAlgorithm !== "SHA256")) throw corrupt("without its SHA-256 checksum");
    const data = await readBody(answer, blockBytes, both);
    if (data === undefined || data.length !== blockBytes) throw corrupt(`with ${data === undefined ? `more than ${blockBytes}` : data.length} bytes, not ${blockBytes}`);
    if (blockDigest(data).toString("base64") !== answer.Checksum) throw corrupt("not matching its SHA-256");
    return data;
  } catch (error) {
    if (deadline.aborted && !signal.aborted) throw Object.assign(new Error(`no whole answer within ${deadlineMs / 1000}s`), { name: "TimeoutError" });
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** The body, read no further than `limit` bytes: undefined when it is longer. */
async function readBody(answer: GetSnapshotBlockCommandOutput, limit: number, signal: AbortSignal): Promise<Buffer | undefined> {
  const body = answer.BlockData as unknown as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
  if (body === undefined) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let length = 0;
  const stop = (): void => body.destroy?.();
  signal.addEventListener("abort", stop, { once: true });
  try {
    for await (const chunk of body) {
      length += chunk.length;
      if (length > limit) {
        stop();
        return undefined;
      }
      chunks.push(Buffer.from(chunk));
    }
  } finally {
    signal.removeEventListener("abort", stop);
  }
  if (signal.aborted) throw Object.assign(new Error("aborted"), { name: "AbortError" });
  return Buffer.concat(chunks, length);
}

/** Room for a page's blocks where the copy is written, said before the disk fills. */
async function enoughSpace(directory: string, needed: number, snapshotId: string): Promise<void> {
  const fs = await statfs(directory).catch(() => undefined);
  if (fs === undefined) return;
  const free = fs.bavail * fs.bsize;
  if (free < needed + 64 * 1024 * 1024) {
    throw new KilnError("KILN_SIZE", `${directory} has ${megabytes(free)} free, too little for the next ${megabytes(needed)} of snapshot ${snapshotId}`, { hint: "point TMPDIR at a file system with room for the snapshot's written blocks" });
  }
}

function answerError(snapshotId: string, what: string, hint = "the answer is not one AWS gives: check the endpoint (AWS_ENDPOINT_URL, a proxy) and run it again"): KilnError {
  return new KilnError("KILN_EBS_SNAPSHOT", `snapshot ${snapshotId} ${what}`, { exitCode: 2, hint });
}
