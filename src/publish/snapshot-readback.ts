import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetSnapshotBlockCommand, ListSnapshotBlocksCommand, type EBSClient } from "@aws-sdk/client-ebs";
import { KilnError } from "../errors.js";
import { megabytes } from "../report/format.js";
import { runPool } from "./block-pool.js";
import type { RateBudget } from "./rate-budget.js";
import { blockDigest } from "./snapshot-blocks.js";
import { retried } from "./snapshot-upload.js";

/** A snapshot's bytes on this machine: written blocks where they lie, holes (zeros) elsewhere. */
export interface SnapshotCopy {
  path: string;
  bytes: number;
  blocks: number;
  blockBytes: number;
  seconds: number;
  remove: () => Promise<void>;
}

/**
 * Reads a completed snapshot back through the EBS direct APIs, nothing launched and no volume
 * attached: ListSnapshotBlocks names the blocks ever written (paged), GetSnapshotBlock fetches
 * them many at once under the shared budget, each checked against the SHA-256 AWS sends with
 * it. They land in a sparse file in a private directory, so the raw-image audit reads the
 * snapshot exactly as it reads a disk file: every written byte, free space included, and holes
 * (never written: zeros) costing nothing.
 */
export async function readSnapshot(ebs: EBSClient, snapshotId: string, options: { budget: RateBudget; signal: AbortSignal; tempDirectory?: string; progress: (line: string) => void }): Promise<SnapshotCopy> {
  const started = Date.now();
  const { budget, signal } = options;
  const listed: { index: number; token: string }[] = [];
  let volumeGiB = 0;
  let blockBytes = 0;
  for (let token: string | undefined, page = 1; ; page++) {
    const answer = await retried(`listing the blocks of snapshot ${snapshotId} (ebs:ListSnapshotBlocks, page ${page})`, budget, signal, (abortSignal) => ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, MaxResults: 10_000, ...(token === undefined ? {} : { NextToken: token }) }), { abortSignal }));
    volumeGiB = answer.VolumeSize ?? volumeGiB;
    blockBytes = answer.BlockSize ?? blockBytes;
    for (const b of answer.Blocks ?? []) if (b.BlockIndex !== undefined && b.BlockToken !== undefined) listed.push({ index: b.BlockIndex, token: b.BlockToken });
    token = answer.NextToken;
    if (token === undefined || token === "") break;
  }
  if (blockBytes <= 0 || volumeGiB <= 0) throw new KilnError("KILN_EBS_SNAPSHOT", `snapshot ${snapshotId}: ebs:ListSnapshotBlocks gave no volume or block size`, { hint: "check that the snapshot is completed and that these credentials may read it" });
  const bytes = volumeGiB * 1024 ** 3;
  const directory = await mkdtemp(join(options.tempDirectory ?? tmpdir(), "kiln-snapshot-"));
  const path = join(directory, `${snapshotId}.raw`);
  const remove = (): Promise<void> => rm(directory, { recursive: true, force: true });
  try {
    const file = await open(path, "wx", 0o600);
    try {
      await file.truncate(bytes);
      options.progress(`reading ${listed.length} written block${listed.length === 1 ? "" : "s"} (${megabytes(listed.length * blockBytes)}) of snapshot ${snapshotId} (${volumeGiB} GiB)`);
      let got = 0;
      let lastLine = Date.now();
      await runPool(listed.map((_, i) => i), async (i, abortSignal) => {
        const { index, token } = listed[i] as { index: number; token: string };
        const answer = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockToken: token }), { abortSignal });
        const data = Buffer.from(await answer.BlockData?.transformToByteArray() ?? new Uint8Array());
        if (data.length !== blockBytes || (answer.Checksum !== undefined && blockDigest(data).toString("base64") !== answer.Checksum)) {
          throw new KilnError("KILN_EBS_BLOCK_CORRUPT", `block ${index} of snapshot ${snapshotId} came back with ${data.length} bytes${answer.Checksum === undefined ? "" : " not matching its SHA-256"}`, { hint: "run the audit again; if it persists, the snapshot or the connection is damaged" });
        }
        await file.write(data, 0, data.length, index * blockBytes);
        got++;
        if (Date.now() - lastLine > 5000) {
          lastLine = Date.now();
          options.progress(`read ${got}/${listed.length} blocks, ${((got * blockBytes) / 1e6 / ((Date.now() - started) / 1000)).toFixed(1)} MB/s`);
        }
      }, { budget, signal, doing: (i) => `reading block ${listed[i]?.index ?? "?"} of snapshot ${snapshotId} (ebs:GetSnapshotBlock)` });
    } finally {
      await file.close();
    }
    return { path, bytes, blocks: listed.length, blockBytes, seconds: (Date.now() - started) / 1000, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}
