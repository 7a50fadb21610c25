import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, statSync } from "node:fs";
import { open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { GetSnapshotBlockCommand, ListSnapshotBlocksCommand, type EBSClient } from "@aws-sdk/client-ebs";
import { DescribeImageAttributeCommand, DescribeSnapshotsCommand, type EC2Client } from "@aws-sdk/client-ec2";
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
    const blocks = Math.ceil(size / blockBytes);
    let next = 0;
    // Sixteen blocks at a time: the same check, a third of the time of one by one through moto.
    const reader = async (): Promise<void> => {
      for (let index = next++; index < blocks; index = next++) {
        const local = Buffer.alloc(blockBytes);
        await handle.read(local, 0, Math.min(blockBytes, size - index * blockBytes), index * blockBytes);
        const token = listed.get(index);
        if (token === undefined) {
          assert.ok(local.every((b) => b === 0), `block ${index} holds data on the disk and was not uploaded`);
          continue;
        }
        const got = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockToken: token }));
        assert.ok(Buffer.from(await got.BlockData?.transformToByteArray() ?? new Uint8Array()).equals(local), `block ${index} differs from the disk`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, reader));
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
    aws.proxy.inject("PutSnapshotBlock", { throttle: 16, loseResponse: 3 });
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
    const { size } = statSync(join(built, "disk.raw"));
    assert.ok(written < size / blockBytes, "zero blocks were not sent");
    const snapshot = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots?.[0];
    assert.ok(snapshot?.Tags?.some((t) => t.Key === "kiln:build-id") && snapshot.Tags.some((t) => t.Key === "team" && t.Value === "images"), "the snapshot is tagged");
    assert.deepEqual(await readdir(join(stateDir, "builds")).catch(() => []), [], "no journal left");
  });

  /** A copy of the built output (disk, manifest, audit report) to publish again on its own. */
  async function copyOfBuilt(name: string): Promise<string> {
    const dir = join(scratch, name);
    execFileSync("mkdir", ["-p", dir]);
    execFileSync("cp", ["--sparse=always", join(built, "disk.raw"), join(built, "manifest.json"), join(built, "audit.json"), dir]);
    // As built, before its first publish: the images of this copy are the only ones its manifest lists.
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Manifest;
    delete manifest.published;
    await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest));
    return join(dir, "disk.raw");
  }

  async function journalFiles(): Promise<string[]> {
    return (await readdir(join(stateDir, "builds")).catch(() => [] as string[])).filter((n) => n.endsWith(".json"));
  }

  /** A publish killed with SIGKILL (no cleanup at all) once some blocks are in and journaled. */
  async function killMidUpload(disk: string, template: string): Promise<void> {
    aws.proxy.inject("PutSnapshotBlock", { delayMs: 40 });
    const run = startKiln(["publish", disk, "--template", template], env);
    for (let waited = 0; ; waited += 200) {
      const journal = (await journalFiles())[0];
      const done = journal === undefined ? "" : ((JSON.parse(await readFile(join(stateDir, "builds", journal), "utf8")) as { upload?: { done: string } }).upload?.done ?? "");
      if (done.length > 0 && (aws.proxy.calls.get("PutSnapshotBlock") ?? 0) > 40) break;
      assert.ok(waited < 120_000, `the upload never got going:\n${run.stdout()}`);
      await sleep(200);
    }
    run.child.kill("SIGKILL");
    await run.done;
  }

  it("resumes an upload killed midway: only the blocks not yet put are sent, and the snapshot equals the disk", async () => {
    aws.proxy.reset();
    const disk = await copyOfBuilt("resume");
    const template = await exampleWith("resume", "region: us-east-1\nname: kiln-e2e-resume");
    await killMidUpload(disk, template);
    const before = aws.proxy.calls.get("PutSnapshotBlock") ?? 0;
    aws.proxy.reset();
    const resumed = await runKiln(["publish", disk, "--template", template, "--resume"], env);
    assert.equal(resumed.code, 0, `${resumed.stdout}\n${resumed.stderr}`);
    assert.match(resumed.stdout, /resuming the upload into snap-\w+: \d+ blocks were put before/);
    const manifest = JSON.parse(await readFile(join(scratch, "resume", "manifest.json"), "utf8")) as Manifest;
    const published = manifest.published?.amazon.find((p) => p.region === "us-east-1");
    const snapshotId = published?.snapshots[0] ?? "";
    const written = await assertSnapshotIsDisk(ebs, snapshotId, disk);
    const again = aws.proxy.calls.get("PutSnapshotBlock") ?? 0;
    assert.ok(again < written, `the resumed run sent ${again} of ${written} blocks (the first sent ${before})`);
    assert.equal(aws.proxy.calls.get("StartSnapshot") ?? 0, 0, "no second snapshot");
    assert.deepEqual(await journalFiles(), []);
  });

  it("leaves nothing after a killed upload once kiln cleanup --stale has run", async () => {
    aws.proxy.reset();
    const disk = await copyOfBuilt("cleanup");
    const template = await exampleWith("cleanup", "region: us-east-1\nname: kiln-e2e-cleanup");
    await killMidUpload(disk, template);
    const [journal] = await journalFiles();
    const { upload } = JSON.parse(await readFile(join(stateDir, "builds", journal ?? ""), "utf8")) as { upload: { snapshotId: string } };
    aws.proxy.reset();
    const cleanup = await runKiln(["cleanup", "--stale", "--yes"], env);
    assert.equal(cleanup.code, 0, `${cleanup.stdout}\n${cleanup.stderr}`);
    assert.match(cleanup.stdout, new RegExp(`snapshot ${upload.snapshotId}`));
    const left = (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] }))).Snapshots?.filter((s) => s.SnapshotId === upload.snapshotId) ?? [];
    assert.deepEqual(left, [], "the partial snapshot is gone");
    assert.deepEqual(await journalFiles(), []);
  });

  /** A copy whose root filesystem's free blocks hold a private key, its manifest made to vouch for it (a forged audit). */
  async function copyWithSecretInFreeSpace(name: string): Promise<string> {
    const disk = await copyOfBuilt(name);
    const manifestPath = join(scratch, name, "manifest.json");
    const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as Manifest & { disk: { layout: { offset: number }[] } };
    const root = manifest.disk.layout[2]?.offset ?? 0;
    const free = /Free blocks found: (\d+)/.exec(execFileSync("debugfs", ["-R", "ffb 1 30000", `${disk}?offset=${root}`], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }))?.[1];
    assert.ok(free !== undefined, "a free block in the root filesystem");
    const keyFile = join(scratch, `${name}-key`);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "left-behind", "-f", keyFile]);
    const handle = await open(disk, "r+");
    await handle.write(await readFile(keyFile), 0, undefined, root + Number(free) * 4096);
    await handle.close();
    const raw = manifest.artifacts.find((a) => a.format === "raw");
    if (raw !== undefined) raw.sha256 = await sha256File(disk);
    await writeFile(manifestPath, JSON.stringify(manifest));
    return disk;
  }

  it("refuses to make public a disk with a key in its free blocks: the exact bytes are audited before anything is uploaded", async () => {
    aws.proxy.reset();
    const disk = await copyWithSecretInFreeSpace("tampered-public");
    const template = await exampleWith("public", "region: us-east-1\nname: kiln-e2e-public\ngroups: [all]\npublic: true");
    const run = await runKiln(["publish", disk, "--template", template], env);
    assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stderr, /was not shared with everyone \(public\): its audit found \d+ findings? at or above high/);
    assert.match(run.stdout, /private key/i);
    assert.doesNotMatch(run.stdout + run.stderr, /BEGIN OPENSSH PRIVATE KEY-----\n[A-Za-z0-9+/]/, "the key itself is never printed");
    assert.equal(aws.proxy.calls.get("StartSnapshot") ?? 0, 0, "nothing uploaded");
    assert.deepEqual(await journalFiles(), []);
  });

  it("audits an AMI read back from its snapshot: kiln share --public refuses it, kiln audit snap-… names the key", async () => {
    aws.proxy.reset();
    const disk = await copyWithSecretInFreeSpace("tampered-private");
    // Private: the (forged) build audit is taken at its word, and the image stays in the account.
    const template = await exampleWith("private", "region: us-east-1\nname: kiln-e2e-private");
    const run = await runKiln(["publish", disk, "--template", template], env);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    const manifest = JSON.parse(await readFile(join(scratch, "tampered-private", "manifest.json"), "utf8")) as Manifest;
    const { image, snapshots } = manifest.published?.amazon[0] ?? { image: "", snapshots: [] };
    await assertSnapshotIsDisk(ebs, snapshots[0] ?? "", disk);
    aws.proxy.reset();
    const share = await runKiln(["share", image, "--public", "--region", "us-east-1"], env);
    assert.equal(share.code, 1, `${share.stdout}\n${share.stderr}`);
    assert.match(share.stderr, new RegExp(`image ${image} was not shared with everyone \\(public\\)`));
    assert.equal(aws.proxy.calls.get("ModifyImageAttribute") ?? 0, 0, "not shared");
    assert.ok((aws.proxy.calls.get("GetSnapshotBlock") ?? 0) > 0, "read back through the EBS direct APIs");
    assert.equal(aws.proxy.calls.get("RunInstances") ?? 0, 0, "nothing launched");
    assert.match(share.stdout, /private key/i, "the findings are listed");
    const report = await runKiln(["audit", snapshots[0] ?? "", "--region", "us-east-1", "--json"], env);
    assert.equal(report.code, 1, `${report.stdout}\n${report.stderr}`);
    const { passed, findings, image: audited } = JSON.parse(report.stdout) as { passed: boolean; image: string; findings: { rule: string; severity: string; message: string; location: { kind: string; offset?: number } }[] };
    assert.equal(passed, false);
    assert.equal(audited, snapshots[0]);
    assert.ok(findings.some((f) => f.location.kind === "raw" && /private key/i.test(`${f.rule} ${f.message}`)), JSON.stringify(findings));
    // A baseline accepting exactly those findings is the only way past the gate.
    const baseline = join(scratch, "accepted.yaml");
    const serious = findings.filter((f) => f.severity === "high" || f.severity === "critical");
    await writeFile(baseline, `accept:\n${serious.map((f) => `  - { rule: ${f.rule}, offset: ${f.location.offset ?? -1}, reason: planted by the test }`).join("\n")}\n`);
    aws.proxy.reset();
    const accepted = await runKiln(["share", image, "--public", "--region", "us-east-1", "--accept-findings", baseline], env);
    assert.equal(accepted.code, 0, `${accepted.stdout}\n${accepted.stderr}`);
    assert.equal(aws.proxy.calls.get("ModifyImageAttribute"), 1);
  });

  it("says before uploading that the account blocks public images, and how to change it; unblocked, the clean example is audited and made public", async () => {
    aws.proxy.reset();
    aws.setImageBlockPublicAccess("block-new-sharing");
    after(() => aws.setImageBlockPublicAccess("unblocked"));
    const disk = await copyOfBuilt("blocked");
    const template = await exampleWith("blocked", "region: us-east-1\nname: kiln-e2e-blocked\ngroups: [all]\npublic: true");
    const run = await runKiln(["publish", disk, "--template", template], env);
    assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stderr, /the account blocks public images in us-east-1 \(image block public access: block-new-sharing\)/);
    assert.match(run.stderr, /aws ec2 disable-image-block-public-access --region us-east-1/);
    assert.equal(aws.proxy.calls.get("StartSnapshot") ?? 0, 0, "nothing uploaded");
    // Unblocked, the clean example passes the gate (audited again, with no recorded base) and is public.
    aws.setImageBlockPublicAccess("unblocked");
    const open = await runKiln(["publish", disk, "--template", template], env);
    assert.equal(open.code, 0, `${open.stdout}\n${open.stderr}`);
    assert.match(open.stdout, /auditing .*disk\.raw before it is shared with everyone \(public\)/);
    const image = (JSON.parse(await readFile(join(scratch, "blocked", "manifest.json"), "utf8")) as Manifest).published?.amazon[0]?.image ?? "";
    const permissions = (await ec2.send(new DescribeImageAttributeCommand({ ImageId: image, Attribute: "launchPermission" }))).LaunchPermissions ?? [];
    assert.ok(permissions.some((p) => p.Group === "all"), "public");
  });
});
