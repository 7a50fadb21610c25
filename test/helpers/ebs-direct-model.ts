import { createHash } from "node:crypto";
import { ebsInvalid, ebsJsonAnswer, ebsPath } from "./ebs-rest.js";
import type { ProxyCall, RawAnswer } from "./fault-proxy.js";
import { elementText, escapeXml, rewriteItems } from "./xml-items.js";

/** EBS direct's block size (EBS user guide, "Concepts for EBS direct APIs": 512 KiB blocks). */
export const blockSize = 524_288;
const blocksPerGiB = (1024 * 1024 * 1024) / blockSize;

/** A snapshot started through the stand-in, as AWS would hold it. */
export interface ModeledSnapshot {
  id: string;
  volumeSize: number;
  /** pending: blocks may be written; sealing: CompleteSnapshot was called, AWS is still at work. */
  status: "pending" | "sealing" | "completed" | "error";
  /** What a sealing snapshot becomes (error when CompleteSnapshot's count or aggregate checksum was wrong). */
  outcome?: "completed" | "error";
  /** Why it is (or will be) in error, shown as DescribeSnapshots' stateMessage. */
  errorMessage?: string;
  /** base64 SHA-256 of each block written, by block index (the last write wins). */
  blocks: Map<number, string>;
  timeoutMinutes: number;
  /** When a pending snapshot goes to error (StartSnapshot's Timeout, counted from the start and from each write). */
  deadline: number;
  /** How many more DescribeSnapshots show a sealing snapshot as pending. */
  describesLeft: number;
  /** The blocks themselves, for a snapshot EC2 made (moto holds none of its data). */
  data?: Map<number, Buffer>;
}

const sha256 = (data: Buffer): Buffer => createHash("sha256").update(data).digest();
const header = (call: ProxyCall, name: string): string | undefined => {
  const value = call.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * The EBS direct APIs as AWS documents them, where moto (5.2) is lenient: checksums checked,
 * blocks only into a pending snapshot within its volume, CompleteSnapshot's count and aggregate
 * checked (a wrong one ends the snapshot in `error`), ListSnapshotBlocks paged and only on a
 * completed snapshot, block tokens checked, StartSnapshot's ClientToken and Timeout honoured.
 */
export class EbsDirectModel {
  /**
   * What the disk of a build instance held, for the snapshots EC2 makes of it (CreateImage,
   * CopyImage): moto keeps no data, AWS lets EBS direct read the blocks the instance wrote. Unset:
   * such snapshots read back with no block written.
   */
  instanceDisk: { volumeGiB: number; blocks: Map<number, Buffer> } | undefined;
  /** How many DescribeSnapshots show a completed upload as pending before it is completed (or error). */
  pendingDescribes = 2;
  readonly snapshots = new Map<string, ModeledSnapshot>();
  private readonly started = new Map<string, RawAnswer>();
  private clockOffset = 0;

  now(): number {
    return Date.now() + this.clockOffset;
  }

  /** Moves the stand-in's clock on (for StartSnapshot's Timeout, in minutes on AWS). */
  advanceClock(ms: number): void {
    this.clockOffset += ms;
  }

  reset(): void {
    this.snapshots.clear();
    this.started.clear();
    this.clockOffset = 0;
    this.pendingDescribes = 2;
    this.instanceDisk = undefined;
  }

  /** A snapshot EC2 made (named by DescribeImages): completed, holding `instanceDisk`'s blocks. */
  knowEc2Snapshot(id: string): void {
    if (this.snapshots.has(id)) return;
    const data = this.instanceDisk?.blocks ?? new Map<number, Buffer>();
    this.snapshots.set(id, {
      id, volumeSize: this.instanceDisk?.volumeGiB ?? 8, status: "completed", timeoutMinutes: 60, deadline: Infinity, describesLeft: 0,
      blocks: new Map([...data].map(([i, b]) => [i, sha256(b).toString("base64")])), data,
    });
  }

  /** The snapshot as the stand-in holds it, past its timeout if due. */
  snapshot(id: string): ModeledSnapshot | undefined {
    const snapshot = this.snapshots.get(id);
    if (snapshot?.status === "pending" && this.now() > snapshot.deadline) {
      snapshot.status = "error";
      snapshot.errorMessage = `not completed within its timeout of ${snapshot.timeoutMinutes} minutes`;
    }
    return snapshot;
  }

  /** The block token the stand-in gives for a block (a hash of the snapshot, index and data, as AWS's identify the block). */
  blockToken(id: string, index: number): string | undefined {
    const digest = this.snapshots.get(id)?.blocks.get(index);
    return digest === undefined ? undefined : createHash("sha256").update(`${id}:${index}:${digest}`).digest("base64url");
  }

  async answer(call: ProxyCall, forward: (body?: Buffer) => Promise<RawAnswer>): Promise<RawAnswer | undefined> {
    if (call.action === "StartSnapshot") return this.start(call, forward);
    const { snapshotId, blockIndex, query } = ebsPath(call.url);
    // A snapshot not started through the stand-in is one EC2 made (CreateImage, CopyImage: the
    // amazon-ebs builder's): readable as AWS reads it. (Leniency left: an id that exists nowhere
    // reads as an empty snapshot, where AWS answers ResourceNotFoundException.)
    if ((call.action === "ListSnapshotBlocks" || call.action === "GetSnapshotBlock") && /^snap-[0-9a-f]+$/.test(snapshotId)) this.knowEc2Snapshot(snapshotId);
    const snapshot = this.snapshot(snapshotId);
    if (snapshot === undefined) return undefined; // not started through the stand-in: moto's answer
    switch (call.action) {
      case "PutSnapshotBlock": return this.put(call, snapshot, blockIndex ?? -1, forward);
      case "CompleteSnapshot": return this.complete(call, snapshot, forward);
      case "ListSnapshotBlocks": return this.list(snapshot, query);
      case "GetSnapshotBlock": return this.get(snapshot, blockIndex ?? -1, query, forward);
      default: return undefined;
    }
  }

  private async start(call: ProxyCall, forward: (body?: Buffer) => Promise<RawAnswer>): Promise<RawAnswer> {
    const request = JSON.parse(call.body.toString() || "{}") as { VolumeSize?: number; ClientToken?: string; Timeout?: number };
    // StartSnapshot: the same ClientToken gives the same snapshot (idempotency); Timeout 10..4320 minutes, default 60.
    const again = request.ClientToken === undefined ? undefined : this.started.get(request.ClientToken);
    if (again !== undefined) return again;
    const timeoutMinutes = request.Timeout ?? 60;
    if (timeoutMinutes < 10 || timeoutMinutes > 4320) return ebsInvalid("INVALID_PARAMETER_VALUE", `Timeout must be between 10 and 4320 minutes, not ${timeoutMinutes}`);
    const moto = await forward();
    if (moto.status >= 300) return moto;
    const started = JSON.parse(moto.body.toString()) as { SnapshotId: string; BlockSize?: number; Status?: string };
    // moto 5.2 answers BlockSize 512; AWS's is 512 KiB, in a pending snapshot.
    const body = Buffer.from(JSON.stringify({ ...started, BlockSize: blockSize, Status: "pending" }));
    const answer: RawAnswer = { ...moto, body, headers: { ...moto.headers, "content-length": String(body.length) } };
    this.snapshots.set(started.SnapshotId, {
      id: started.SnapshotId, volumeSize: request.VolumeSize ?? 0, status: "pending", blocks: new Map(),
      timeoutMinutes, deadline: this.now() + timeoutMinutes * 60_000, describesLeft: 0,
    });
    if (request.ClientToken !== undefined) this.started.set(request.ClientToken, answer);
    return answer;
  }

  private async put(call: ProxyCall, snapshot: ModeledSnapshot, index: number, forward: (body?: Buffer) => Promise<RawAnswer>): Promise<RawAnswer> {
    if (snapshot.status !== "pending") return ebsInvalid("INVALID_SNAPSHOT_ID", `The snapshot ${snapshot.id} is ${snapshot.status === "sealing" ? "being completed" : snapshot.status}: blocks can only be written to a pending snapshot`);
    const length = Number(header(call, "x-amz-Data-Length"));
    if (length !== blockSize || call.body.length !== blockSize) return ebsInvalid("INVALID_PARAMETER_VALUE", `DataLength must be ${blockSize} (got header ${length}, body ${call.body.length} bytes)`);
    if (header(call, "x-amz-Checksum-Algorithm") !== "SHA256") return ebsInvalid("INVALID_PARAMETER_VALUE", "ChecksumAlgorithm must be SHA256");
    if (!Number.isInteger(index) || index < 0 || index >= snapshot.volumeSize * blocksPerGiB) return ebsInvalid("INVALID_BLOCK", `Block index ${index} is outside the ${snapshot.volumeSize} GiB volume`);
    const digest = sha256(call.body).toString("base64");
    if (header(call, "x-amz-Checksum") !== digest) return ebsInvalid("INVALID_PARAMETER_VALUE", "The checksum does not match the block data");
    const answer = await forward();
    if (answer.status >= 300) return answer;
    snapshot.blocks.set(index, digest);
    snapshot.deadline = this.now() + snapshot.timeoutMinutes * 60_000;
    return { ...answer, headers: { ...answer.headers, "x-amz-checksum": digest, "x-amz-checksum-algorithm": "SHA256" } };
  }

  private async complete(call: ProxyCall, snapshot: ModeledSnapshot, forward: (body?: Buffer) => Promise<RawAnswer>): Promise<RawAnswer> {
    if (snapshot.status !== "pending") return ebsInvalid("INVALID_SNAPSHOT_ID", `The snapshot ${snapshot.id} is ${snapshot.status}, not pending`);
    const count = Number(header(call, "x-amz-ChangedBlocksCount"));
    const checksum = header(call, "x-amz-Checksum");
    const method = header(call, "x-amz-Checksum-Aggregation-Method");
    const ordered = [...snapshot.blocks.entries()].sort(([a], [b]) => a - b).map(([, digest]) => Buffer.from(digest, "base64"));
    const aggregate = sha256(Buffer.concat(ordered)).toString("base64");
    // The call only starts an asynchronous seal (EBS user guide, "Write snapshots"); a wrong count or aggregate shows later as state error.
    snapshot.status = "sealing";
    snapshot.describesLeft = this.pendingDescribes;
    snapshot.outcome = "completed";
    if (count !== snapshot.blocks.size) {
      snapshot.outcome = "error";
      snapshot.errorMessage = `ChangedBlocksCount ${count} but ${snapshot.blocks.size} blocks were written`;
    } else if (checksum !== undefined && method === "LINEAR" && checksum !== aggregate) {
      snapshot.outcome = "error";
      snapshot.errorMessage = "the aggregate checksum does not match the blocks written";
    }
    await forward();
    return ebsJsonAnswer(202, { Status: "pending" });
  }

  private list(snapshot: ModeledSnapshot, query: URLSearchParams): RawAnswer {
    if (snapshot.status !== "completed") return ebsInvalid("INVALID_SNAPSHOT_ID", `The snapshot ${snapshot.id} is ${snapshot.status}: only a completed snapshot can be read`);
    const asked = query.get("maxResults");
    if (asked !== null && Number(asked) > 10_000) return ebsInvalid("INVALID_PARAMETER_VALUE", `MaxResults must be at most 10000, not ${asked}`);
    // Below 100 AWS still returns at least 100 (EBS direct APIs FAQ).
    const size = Math.max(100, asked === null ? 10_000 : Number(asked));
    const token = query.get("pageToken");
    let from = Number(query.get("startingBlockIndex") ?? 0);
    if (token !== null) {
      const page = /^(snap-\w+):(\d+)$/.exec(Buffer.from(token, "base64url").toString());
      if (page === null || page[1] !== snapshot.id) return ebsInvalid("INVALID_PAGE_TOKEN", "The page token is not valid");
      from = Number(page[2]);
    }
    const indexes = [...snapshot.blocks.keys()].filter((i) => i >= from).sort((a, b) => a - b);
    const shown = indexes.slice(0, size);
    const next = indexes[size];
    return ebsJsonAnswer(200, {
      Blocks: shown.map((i) => ({ BlockIndex: i, BlockToken: this.blockToken(snapshot.id, i) })),
      ExpiryTime: Math.floor(this.now() / 1000) + 7 * 24 * 3600,
      VolumeSize: snapshot.volumeSize,
      BlockSize: blockSize,
      ...(next === undefined ? {} : { NextToken: Buffer.from(`${snapshot.id}:${next}`).toString("base64url") }),
    });
  }

  private async get(snapshot: ModeledSnapshot, index: number, query: URLSearchParams, forward: (body?: Buffer) => Promise<RawAnswer>): Promise<RawAnswer> {
    if (snapshot.status !== "completed") return ebsInvalid("INVALID_SNAPSHOT_ID", `The snapshot ${snapshot.id} is ${snapshot.status}: only a completed snapshot can be read`);
    const token = this.blockToken(snapshot.id, index);
    if (token === undefined || query.get("blockToken") !== token) return ebsInvalid("INVALID_BLOCK_TOKEN", `The block token is not valid for block ${index} of ${snapshot.id}`);
    const held = snapshot.data?.get(index);
    const answer = held === undefined ? await forward() : { status: 200, headers: { "content-type": "application/octet-stream" }, body: held };
    if (answer.status >= 300) return answer;
    return {
      ...answer,
      headers: { ...answer.headers, "x-amz-checksum": sha256(answer.body).toString("base64"), "x-amz-checksum-algorithm": "SHA256", "x-amz-data-length": String(answer.body.length) },
    };
  }

  /** DescribeSnapshots as AWS shows an uploaded snapshot: pending while sealing, then completed or error. */
  describeSnapshots(answer: RawAnswer): RawAnswer {
    const document = rewriteItems(answer.body.toString(), "snapshotSet", (item) => {
      const snapshot = this.snapshot(elementText(item, "snapshotId") ?? "");
      if (snapshot === undefined) return item;
      if (snapshot.status === "sealing") {
        if (snapshot.describesLeft > 0) snapshot.describesLeft--;
        else snapshot.status = snapshot.outcome ?? "completed";
      }
      const shown = snapshot.status === "sealing" ? "pending" : snapshot.status;
      const progress = snapshot.status === "completed" ? "100%" : snapshot.status === "sealing" ? `${Math.floor((99 * (this.pendingDescribes - snapshot.describesLeft)) / Math.max(1, this.pendingDescribes + 1))}%` : "0%";
      const message = snapshot.status === "error" && snapshot.errorMessage !== undefined ? `<stateMessage>${escapeXml(snapshot.errorMessage)}</stateMessage>` : "";
      return item
        .replace(/<status>[^<]*<\/status>/, `<status>${shown}</status>${message}`)
        .replace(/<progress>[^<]*<\/progress>/, `<progress>${progress}</progress>`);
    });
    return { ...answer, body: Buffer.from(document) };
  }
}
