/**
 * `npm run bench`, fifth part: `kiln publish`'s data path against moto behind the AWS stand-in
 * (test/helpers/aws-stand-in.ts), each figure beside a plain baseline in the same run:
 *   1. the upload (startSnapshot + putBlocks + completeSnapshot under a RateBudget, as the
 *      upload-snapshot step runs them) against one PutSnapshotBlock at a time with a default
 *      EBSClient, the same non-zero blocks read, hashed and sent in order;
 *   2. the read-back audit (readSnapshot, then the raw-image audit of the copy: auditSnapshot)
 *      against a sequential GetSnapshotBlock loop and an audit of the local disk file itself;
 *   3. the upload again with the proxy throttling 50 PutSnapshotBlock calls: slower, not failed.
 * The disk is the example's (built into /var/tmp/kiln-bench-publish once, then reused), or
 * KILN_BENCH_DISK, or failing both a generated sparse 1 GiB file with ~300 MB of random blocks.
 * moto is one Python process and the stand-in's proxy runs in this process: they, not kiln,
 * bound every MB/s here (real EBS takes many more calls at once, each slower).
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CompleteSnapshotCommand, GetSnapshotBlockCommand, ListSnapshotBlocksCommand, PutSnapshotBlockCommand, StartSnapshotCommand, type EBSClient } from "@aws-sdk/client-ebs";
import { DescribeSnapshotsCommand, EC2Client } from "@aws-sdk/client-ec2";
import { auditImage } from "../src/audit/audit-image.js";
import { dataExtents } from "../src/audit/sources/data-extents.js";
import { ebsClient } from "../src/publish/ebs-client.js";
import { RateBudget } from "../src/publish/rate-budget.js";
import { auditSnapshot } from "../src/publish/share-gate.js";
import { candidateBlocks, snapshotBlockBytes, volumeGiB } from "../src/publish/snapshot-blocks.js";
import { completeSnapshot, putBlocks, startSnapshot } from "../src/publish/snapshot-upload.js";
import { startAwsStandIn, type AwsStandIn } from "../test/helpers/aws-stand-in.js";

const cacheDir = process.env.KILN_CACHE_DIR ?? "/var/tmp/kiln-test-cache";
const diskHome = "/var/tmp/kiln-bench-publish";
/** As the template's publish.amazon.max_concurrency defaults. */
const maxConcurrency = 32;
const throttles = 50;
const scratch = mkdtempSync(join(tmpdir(), "kiln-publish-bench-"));
const signal = new AbortController().signal;
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;
const rate = (bytes: number, seconds: number): string => `${(bytes / 1e6 / seconds).toFixed(1)} MB/s`;
const since = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e9;

/** The disk to publish, and a sentence on where it came from. KILN_BENCH_DISK: a path, or "generated". */
function benchDisk(): { path: string; what: string } {
  const given = process.env.KILN_BENCH_DISK;
  if (given !== undefined && given !== "generated") return { path: given, what: `KILN_BENCH_DISK ${given}` };
  const built = (): string | undefined => (existsSync(diskHome) ? readdirSync(diskHome).sort().reverse().map((d) => join(diskHome, d, "disk.raw")).find(existsSync) : undefined);
  let path = given === "generated" ? undefined : built();
  if (path !== undefined) return { path, what: `the example's disk (examples/debian-local.yaml), built before: ${path}` };
  if (given !== "generated") {
    try {
      mkdirSync(diskHome, { recursive: true });
      execFileSync(process.execPath, ["bin/kiln.js", "build", "examples/debian-local.yaml", "--cache-dir", cacheDir, "--output-dir", diskHome], { stdio: "ignore" });
      path = built();
      if (path !== undefined) return { path, what: `the example's disk (examples/debian-local.yaml), built now: ${path}` };
    } catch (error) {
      console.log(`(could not build the example: ${(error as Error).message.split("\n")[0] ?? ""}; using a generated disk)`);
    }
  }
  // An ext4 filesystem of 1 GiB (sparse) holding ~300 MB of random files, so the audit reads it as it reads a disk.
  const root = join(scratch, "generated-root");
  mkdirSync(join(root, "srv/data"), { recursive: true });
  for (let i = 0; i < 150; i++) writeFileSync(join(root, "srv/data", `blob-${i}.bin`), randomBytes(2e6));
  path = join(scratch, "generated.raw");
  execFileSync("mke2fs", ["-q", "-t", "ext4", "-d", root, path, "1G"]);
  rmSync(root, { recursive: true, force: true });
  return { path, what: `a generated sparse 1 GiB ext4 image holding 300 MB of random files: ${path}` };
}

/** DescribeSnapshots through the proxy (the stand-in seals an upload over a few of them) until completed. */
async function waitCompleted(ec2: EC2Client, snapshotId: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const state = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots?.[0];
    if (state?.State === "completed") return;
    if (state?.State === "error") throw new Error(`snapshot ${snapshotId} ended in error: ${state.StateMessage ?? "?"}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`snapshot ${snapshotId} did not complete`);
}

/** The baseline: one block at a time, in order, with the SDK's default client (its own retries). */
async function plainUpload(ebs: EBSClient, handle: FileHandle, size: number, blocks: readonly number[]): Promise<{ snapshotId: string; seconds: number; sent: number }> {
  const started = process.hrtime.bigint();
  const start = await ebs.send(new StartSnapshotCommand({ VolumeSize: volumeGiB(size), Timeout: 120, ClientToken: `plain-${Date.now()}` }));
  const snapshotId = start.SnapshotId ?? "";
  const linear = createHash("sha256");
  const zeros = Buffer.alloc(snapshotBlockBytes);
  let sent = 0;
  for (const index of blocks) {
    const block = Buffer.alloc(snapshotBlockBytes);
    await handle.read(block, 0, Math.min(snapshotBlockBytes, size - index * snapshotBlockBytes), index * snapshotBlockBytes);
    if (block.equals(zeros)) continue;
    const digest = createHash("sha256").update(block).digest();
    await ebs.send(new PutSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockData: block, DataLength: block.length, Checksum: digest.toString("base64"), ChecksumAlgorithm: "SHA256" }));
    linear.update(digest);
    sent++;
  }
  await ebs.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: sent, Checksum: linear.digest("base64"), ChecksumAlgorithm: "SHA256", ChecksumAggregationMethod: "LINEAR" }));
  return { snapshotId, seconds: since(started), sent };
}

/** kiln's upload as the upload-snapshot step runs it (no journal: the checkpoint is a no-op). */
async function kilnUpload(ebs: EBSClient, handle: FileHandle, size: number, blocks: readonly number[]): Promise<{ snapshotId: string; seconds: number; sent: number; throttled: number; lastThrottle: number; limit: number }> {
  const started = process.hrtime.bigint();
  const budget = new RateBudget(maxConcurrency);
  // When the last throttling answer came, to split a throttled upload's time.
  let seen = 0;
  let lastThrottle = 0;
  const watch = setInterval(() => { if (budget.throttled > seen) { seen = budget.throttled; lastThrottle = since(started); } }, 20);
  try {
    const snapshotId = await startSnapshot(ebs, { volumeGiB: volumeGiB(size), description: "kiln publish bench", tags: [], clientToken: `kiln-${Date.now()}`, timeoutMinutes: 120 }, budget, signal);
    const result = await putBlocks({ ebs, snapshotId, disk: { handle, bytes: size }, blocks, done: new Map(), budget, signal, progress: () => undefined, checkpoint: async () => undefined });
    await completeSnapshot(ebs, snapshotId, result.digests, budget, signal);
    return { snapshotId, seconds: since(started), sent: result.digests.size, throttled: budget.throttled, lastThrottle, limit: budget.limit };
  } finally {
    clearInterval(watch);
  }
}

/** The read baseline: ListSnapshotBlocks, then one GetSnapshotBlock at a time into a sparse file, each checked. */
async function plainRead(ebs: EBSClient, snapshotId: string): Promise<{ seconds: number; blocks: number }> {
  const started = process.hrtime.bigint();
  const path = join(scratch, "plain-read.raw");
  const file = await open(path, "w");
  let blocks = 0;
  try {
    for (let token: string | undefined; ;) {
      const page = await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, MaxResults: 10_000, ...(token === undefined ? {} : { NextToken: token }) }));
      if (blocks === 0) await file.truncate((page.VolumeSize ?? 0) * 1024 ** 3);
      for (const b of page.Blocks ?? []) {
        const got = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: b.BlockIndex, BlockToken: b.BlockToken }));
        const data = Buffer.from(await got.BlockData?.transformToByteArray() ?? new Uint8Array());
        if (createHash("sha256").update(data).digest("base64") !== got.Checksum) throw new Error(`block ${b.BlockIndex} came back damaged`);
        await file.write(data, 0, data.length, (b.BlockIndex ?? 0) * snapshotBlockBytes);
        blocks++;
      }
      token = page.NextToken;
      if (token === undefined || token === "") break;
    }
  } finally {
    await file.close();
    rmSync(path, { force: true });
  }
  return { seconds: since(started), blocks };
}

let aws: AwsStandIn | undefined;
try {
  const disk = benchDisk();
  const size = statSync(disk.path).size;
  const blocks = candidateBlocks(size, await dataExtents(disk.path));
  console.log(`publish benchmark against moto behind the AWS stand-in; disk: ${disk.what}`);
  console.log(`  ${mb(size)} disk (${Math.ceil(size / snapshotBlockBytes)} blocks of 512 KiB), ${blocks.length} blocks touch data extents, into a ${volumeGiB(size)} GiB snapshot`);
  console.log("  NB: moto (one Python process) and the stand-in's proxy (in this node process, hashing every block) are the bottleneck: these MB/s are theirs more than kiln's or EBS's.");
  aws = await startAwsStandIn();
  Object.assign(process.env, aws.env); // kiln's ebsClient() takes the endpoint and credentials from the environment, as in a kiln run
  const ec2 = new EC2Client({ region: "us-east-1", endpoint: aws.proxy.endpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
  const plainEbs = aws.ebsClient();
  const kilnEbs = ebsClient("us-east-1", undefined, maxConcurrency);
  const handle = await open(disk.path, "r");
  try {
    execFileSync("cat", [disk.path], { stdio: ["ignore", "ignore", "ignore"] }); // into the page cache for both

    // 1. Upload: the plain loop first, then kiln, moto emptied before each.
    await aws.reset();
    const plain = await plainUpload(plainEbs, handle, size, blocks);
    await waitCompleted(ec2, plain.snapshotId);
    await aws.reset();
    const kiln = await kilnUpload(kilnEbs, handle, size, blocks);
    await waitCompleted(ec2, kiln.snapshotId);
    const sentBytes = kiln.sent * snapshotBlockBytes;
    if (plain.sent !== kiln.sent) throw new Error(`the plain upload sent ${plain.sent} blocks and kiln ${kiln.sent}`);
    console.log(`upload: ${kiln.sent} non-zero blocks sent (${mb(sentBytes)}), ${blocks.length - kiln.sent} zero blocks read and skipped; StartSnapshot to CompleteSnapshot answered, both snapshots completed:`);
    console.log(`  kiln (pool, up to ${maxConcurrency} at once)  ${kiln.seconds.toFixed(2)} s  ${rate(sentBytes, kiln.seconds)}`);
    console.log(`  plain sequential        ${plain.seconds.toFixed(2)} s  ${rate(sentBytes, plain.seconds)}`);
    console.log(`  throughput ratio kiln / plain: ${(plain.seconds / kiln.seconds).toFixed(2)}`);

    // 2. Read-back audit of kiln's snapshot, then the baselines: a sequential read, the local disk audited.
    // moto serves a snapshot's first read markedly slower than later ones: one untimed read first, for both.
    const warm = await plainRead(plainEbs, kiln.snapshotId);
    const gate = await auditSnapshot(kilnEbs, kiln.snapshotId, new RateBudget(maxConcurrency), { failOn: "high", signal, progress: () => undefined });
    const readPlain = await plainRead(plainEbs, kiln.snapshotId);
    const local = await auditImage(disk.path, { failOn: "high", signal });
    if (gate.readBytes !== sentBytes || readPlain.blocks !== kiln.sent) throw new Error(`read back ${gate.readBytes} and ${readPlain.blocks * snapshotBlockBytes} bytes, not the ${sentBytes} sent`);
    console.log(`read-back audit of ${kiln.snapshotId} (${kiln.sent} blocks, ${mb(gate.readBytes)}; MB/s over the data bytes; the copy is ${volumeGiB(size)} GiB sparse, the local disk ${mb(size)}):`);
    console.log(`  read:  kiln readSnapshot (pool)  ${gate.readSeconds.toFixed(2)} s  ${rate(gate.readBytes, gate.readSeconds)}   plain GetSnapshotBlock loop  ${readPlain.seconds.toFixed(2)} s  ${rate(gate.readBytes, readPlain.seconds)}   ratio ${(readPlain.seconds / gate.readSeconds).toFixed(2)}`);
    console.log(`  audit: the copy  ${gate.seconds.toFixed(2)} s  ${rate(gate.readBytes, gate.seconds)} (${gate.findings.length} findings)   the local disk file  ${local.seconds.toFixed(2)} s  ${rate(gate.readBytes, local.seconds)} (${local.findings.length} findings)   ratio ${(local.seconds / gate.seconds).toFixed(2)}`);
    const total = gate.readSeconds + gate.seconds;
    console.log(`  (an untimed warm-up read went first: ${rate(gate.readBytes, warm.seconds)}, sequential)`);
    console.log(`  whole gate (read + audit): ${total.toFixed(2)} s  ${rate(gate.readBytes, total)}`);

    // 3. kiln's upload again with the proxy throttling the first PutSnapshotBlock calls.
    await aws.reset();
    aws.proxy.inject("PutSnapshotBlock", { throttle: throttles });
    const throttled = await kilnUpload(kilnEbs, handle, size, blocks);
    await waitCompleted(ec2, throttled.snapshotId);
    if (throttled.sent !== kiln.sent) throw new Error(`the throttled upload sent ${throttled.sent} blocks, not ${kiln.sent}`);
    console.log(`upload with ${throttles} throttling answers injected on PutSnapshotBlock: ${throttled.throttled} met, completed; ${throttled.seconds.toFixed(2)} s (the last throttle at ${throttled.lastThrottle.toFixed(1)} s)  ${rate(sentBytes, throttled.seconds)} (unthrottled above: ${rate(sentBytes, kiln.seconds)}, ratio ${(kiln.seconds / throttled.seconds).toFixed(2)}); ${throttled.limit} calls at once allowed at the end`);
    console.log(`  (the proxy throttles the next ${throttles} calls whatever their rate, so once the budget is down to 1 call at once each further one is another slowdown, its pause doubling up to 5 s; EBS throttles by rate, and would not keep throttling 1 call at once)`);
  } finally {
    await handle.close();
    plainEbs.destroy();
    kilnEbs.destroy();
    ec2.destroy();
  }
} finally {
  await aws?.stop();
  rmSync(scratch, { recursive: true, force: true });
}
