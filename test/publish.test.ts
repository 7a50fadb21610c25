import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, beforeEach, describe, it } from "node:test";
import { GetSnapshotBlockCommand, ListSnapshotBlocksCommand, type EBSClient } from "@aws-sdk/client-ebs";
import { DescribeSnapshotsCommand, type EC2Client } from "@aws-sdk/client-ec2";
import { sha256File } from "../src/system/sha256.js";
import { startAwsStandIn, type AwsStandIn } from "./helpers/aws-stand-in.js";
import { repoRoot, runKiln, startKiln } from "./helpers/kiln-process.js";

/**
 * The example disk, built on this machine, made into an AMI with the EBS direct APIs: through
 * the stand-in (moto behind a proxy that answers as AWS documents, with throttling, lost
 * answers and a crash mid-upload), then read back block by block and compared with the disk.
 */
const cacheDir = process.env.KILN_TEST_CACHE_DIR ?? "/var/tmp/kiln-test-cache";
const scratch = mkdtempSync(join(tmpdir(), "kiln-publish-e2e-"));
after(() => rm(scratch, { recursive: true, force: true }));
const blockBytes = 524_288;

/** The example template with `publish.amazon` added to its local builder. */
async function exampleWith(name: string, amazon: string): Promise<string> {
  const text = await readFile(join(repoRoot, "examples", "debian-local.yaml"), "utf8");
  const marker = "    disk:\n";
  assert.ok(text.includes(marker));
  const file = join(repoRoot, "examples", `.publish-e2e-${name}.generated.yaml`);
  await writeFile(file, text.replace(marker, `    publish:\n      amazon:\n${amazon.split("\n").filter(Boolean).map((l) => `        ${l}`).join("\n")}\n${marker}`));
  after(() => rm(file, { force: true }));
  return file;
}

/** Every block of the snapshot read back (through the stand-in) equals the disk's bytes there, zeros where none was written. */
async function assertSnapshotIsDisk(ebs: EBSClient, snapshotId: string, disk: string): Promise<number> {
  const listed = new Map<number, string>();
  for (let token: string | undefined; ;) {
    const page = await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, MaxResults: 1000, ...(token === undefined ? {} : { NextToken: token }) }));
    for (const b of page.Blocks ?? []) listed.set(b.BlockIndex ?? -1, b.BlockToken ?? "");
    token = page.NextToken;
    if (token === undefined) break;
  }
  const handle = await open(disk, "r");
  try {
    const { size } = await handle.stat();
    const local = Buffer.alloc(blockBytes);
    for (let index = 0; index * blockBytes < size; index++) {
      local.fill(0);
      await handle.read(local, 0, Math.min(blockBytes, size - index * blockBytes), index * blockBytes);
      const token = listed.get(index);
      if (token === undefined) {
        assert.ok(local.every((b) => b === 0), `block ${index} holds data on the disk and was not uploaded`);
        continue;
      }
      const got = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockToken: token }));
      assert.ok(Buffer.from(await got.BlockData?.transformToByteArray() ?? new Uint8Array()).equals(local), `block ${index} differs from the disk`);
    }
    assert.ok([...listed.keys()].every((i) => i * blockBytes < size), "no block past the disk's end");
  } finally {
    await handle.close();
  }
  return listed.size;
}

interface Manifest { artifacts: { format: string; path: string; sha256: string }[]; published?: { amazon: { region: string; image: string; snapshots: string[]; sha256: string }[] } }

describe("kiln publish: a local disk to an AMI without booting a builder", { timeout: 30 * 60_000 }, () => {
  let aws: AwsStandIn;
  let ebs: EBSClient;
  let ec2: EC2Client;
  let built: string;
  let env: NodeJS.ProcessEnv;
  let buildRun: { code: number | null; stdout: string; stderr: string };
  const stateDir = join(scratch, "state");

  before(async () => {
    aws = await startAwsStandIn();
    ebs = aws.ebsClient();
    ec2 = aws.ec2();
    env = { ...aws.env, KILN_STATE_DIR: stateDir };
    // Throttling, lost answers (a block's, the completion's, the registration's): the publish rides them out.
    aws.proxy.inject("PutSnapshotBlock", { throttle: 40, loseResponse: 3 });
    aws.proxy.inject("CompleteSnapshot", { loseResponse: 1 });
    aws.proxy.inject("RegisterImage", { loseResponse: 1 });
    const template = await exampleWith("build", "region: us-east-1\nname: kiln-e2e-example\nregions: [us-west-2]\ntags: {team: images}");
    buildRun = await runKiln(["build", template, "--cache-dir", cacheDir, "--work-dir", join(scratch, "work"), "--output-dir", join(scratch, "out")], env);
    const [only] = await readdir(join(scratch, "out"));
    built = join(scratch, "out", only ?? "");
  });
  after(async () => { ebs?.destroy(); await aws?.stop(); });

  it("builds the example and publishes it through throttling and lost answers: registered as asked, the blocks equal the disk", async () => {
    assert.equal(buildRun.code, 0, `${buildRun.stdout}\n${buildRun.stderr}`);
    assert.match(buildRun.stdout, /upload snapshot: snap-\w+: \d+ blocks .* MB\/s; \d+ zero blocks not sent; \d+ throttling answers waited out/);
    assert.doesNotMatch(buildRun.stdout + buildRun.stderr, /PRIVATE KEY|testing/, "no credentials or keys printed");
    const manifest = JSON.parse(await readFile(join(built, "manifest.json"), "utf8")) as Manifest;
    const raw = manifest.artifacts.find((a) => a.format === "raw");
    const published = manifest.published?.amazon ?? [];
    assert.deepEqual(published.map((p) => p.region), ["us-east-1", "us-west-2"]);
    assert.ok(published.every((p) => p.sha256 === raw?.sha256 && /^ami-/.test(p.image)));
    const registered = aws.images.registered.get(published[0]?.image ?? "");
    assert.ok(registered !== undefined, "registered through RegisterImage");
    assert.equal(registered.bootMode, "uefi-preferred");
    assert.equal(registered.enaSupport, true);
    assert.equal(registered.imdsSupport, "v2.0");
    assert.equal(registered.virtualizationType, "hvm");
    assert.equal(registered.rootDeviceName, "/dev/xvda");
    const snapshotId = published[0]?.snapshots[0] ?? "";
    assert.equal(registered.blockDevices[0]?.snapshotId, snapshotId);
    assert.equal(aws.ebs.snapshot(snapshotId)?.status, "completed");
    const written = await assertSnapshotIsDisk(ebs, snapshotId, join(built, "disk.raw"));
    const { size } = await (await open(join(built, "disk.raw"), "r")).stat();
    assert.ok(written < size / blockBytes, "zero blocks were not sent");
    const snapshot = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots?.[0];
    assert.ok(snapshot?.Tags?.some((t) => t.Key === "kiln:build-id") && snapshot.Tags.some((t) => t.Key === "team" && t.Value === "images"), "the snapshot is tagged");
    assert.deepEqual(await readdir(join(stateDir, "builds")).catch(() => []), [], "no journal left");
  });
});
