import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import type { ByteRange } from "../audit/sources/data-extents.js";

/** The EBS direct APIs move a snapshot in blocks of 512 KiB (StartSnapshot answers it; it has never been anything else). */
export const snapshotBlockBytes = 512 * 1024;
const gibibyte = 1024 ** 3;

/** The size of the snapshot a disk goes into: EBS volumes are whole GiB. */
export function volumeGiB(diskBytes: number): number {
  return Math.max(1, Math.ceil(diskBytes / gibibyte));
}

/** The SHA-256 of one block as EBS takes it (base64 of the 32-byte digest). */
export function blockDigest(block: Buffer): Buffer {
  return createHash("sha256").update(block).digest();
}

/**
 * The whole snapshot's checksum as CompleteSnapshot takes it with the LINEAR method: the
 * SHA-256 of every written block's raw digest, in block-index order, base64.
 */
export function linearChecksum(digests: ReadonlyMap<number, Buffer>): string {
  const hash = createHash("sha256");
  for (const index of [...digests.keys()].sort((a, b) => a - b)) hash.update(digests.get(index) ?? Buffer.alloc(0));
  return hash.digest("base64");
}

/**
 * The indexes of the disk's blocks that may hold data: those touching a data extent (holes are
 * zeros, so never read or sent). A block that turns out all zeros when read is skipped too.
 */
export function candidateBlocks(diskBytes: number, extents: readonly ByteRange[] | undefined): number[] {
  const blocks = Math.ceil(diskBytes / snapshotBlockBytes);
  if (extents === undefined) return Array.from({ length: blocks }, (_, i) => i);
  const found = new Set<number>();
  for (const [from, to] of extents) {
    const last = Math.min(Math.ceil(Math.min(to, diskBytes) / snapshotBlockBytes), blocks);
    for (let i = Math.floor(from / snapshotBlockBytes); i < last; i++) found.add(i);
  }
  return [...found].sort((a, b) => a - b);
}

const zeros = Buffer.alloc(snapshotBlockBytes);

/** One block of the disk, padded with zeros past its end; undefined when it is all zeros. */
export async function readBlock(handle: FileHandle, diskBytes: number, index: number): Promise<Buffer | undefined> {
  const block = Buffer.alloc(snapshotBlockBytes);
  const offset = index * snapshotBlockBytes;
  const length = Math.min(snapshotBlockBytes, diskBytes - offset);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(block, done, length - done, offset + done);
    if (bytesRead === 0) throw new Error(`the disk ended at byte ${offset + done}, before its size of ${diskBytes} (was it changed while kiln read it?)`);
    done += bytesRead;
  }
  return block.equals(zeros) ? undefined : block;
}
