import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import {
  CreateImageCommand, CreateSnapshotCommand, CreateTagsCommand, CreateVolumeCommand, DeleteSnapshotCommand, DeregisterImageCommand, DescribeImagesCommand,
  DescribeSnapshotsCommand, EC2Client, RunInstancesCommand,
} from "@aws-sdk/client-ec2";
import type { FaultProxy } from "./helpers/fault-proxy.js";
import { startAwsStandIn, type AwsStandIn } from "./helpers/aws-stand-in.js";
import { runKiln, startKiln } from "./helpers/kiln-process.js";
import type { Moto } from "./helpers/moto.js";

const amazonLinux = "    source_ami_filter: {filters: {name: amzn2-ami-hvm-*-x86_64-gp2}, owners: [amazon], most_recent: true}\n    instance_type: t3.micro\n    ami_name: kiln-test-${{ uuid }}\n";
const byKiln = [{ Name: "tag-key", Values: ["kiln:build-id"] }];
const kilnTag = (buildId: string) => [{ Key: "kiln:build-id", Value: buildId }];

describe("removing a kiln image leaves none of its snapshots (against moto)", { timeout: 10 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-ebs-removal-"));
  const state = join(dir, "state");
  let aws: AwsStandIn;
  let env: NodeJS.ProcessEnv;
  let moto: Moto;
  let ec2: EC2Client;
  let proxy: FaultProxy;
  after(async () => {
    await aws?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  before(async () => {
    aws = await startAwsStandIn({ KILN_STATE_DIR: state });
    ({ env, moto, proxy } = aws);
    ec2 = aws.ec2();
  });
  beforeEach(async () => {
    await aws.reset();
    await rm(state, { recursive: true, force: true });
  });

  async function template(name: string, builder: string): Promise<string> {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, `name: ${name}\nbuilders:\n  - type: amazon-ebs\n    region: us-east-1\n    endpoint: ${proxy.endpoint}\n    wait: {delay_seconds: 0.1, timeout_seconds: 30}\n    communicator: none\n${builder}`);
    return file;
  }

  const journals = async (): Promise<string[]> => (await readdir(join(state, "builds")).catch(() => [])).filter((f) => f.endsWith(".json"));
  const ownImages = async () => (await ec2.send(new DescribeImagesCommand({ Owners: ["self"] }))).Images ?? [];
  const kilnSnapshots = async () => ((await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: byKiln }))).Snapshots ?? []).map((s) => s.SnapshotId);
  const snapshotsOf = async (image: string) => ((await ec2.send(new DescribeImagesCommand({ ImageIds: [image] }))).Images?.[0]?.BlockDeviceMappings ?? [])
    .map((m) => m.Ebs?.SnapshotId).filter((s): s is string => s !== undefined);

  /** An image of this account made from a running instance (moto gives it one snapshot), as a build makes it. */
  async function madeImage(name: string): Promise<{ image: string; snapshots: string[] }> {
    const source = (await ec2.send(new DescribeImagesCommand({ Owners: ["amazon"], Filters: [{ Name: "name", Values: ["amzn2-ami-hvm-*-x86_64-gp2"] }] }))).Images?.[0]?.ImageId;
    const instance = (await ec2.send(new RunInstancesCommand({ ImageId: source, MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" }))).Instances?.[0]?.InstanceId;
    const image = (await ec2.send(new CreateImageCommand({ InstanceId: instance, Name: name }))).ImageId ?? "";
    return { image, snapshots: await snapshotsOf(image) };
  }

  it("a build failing after its image exists leaves no image and no snapshot, and deletes none EC2 deleted with the image", async () => {
    // As AWS answers DeleteAssociatedSnapshots (moto ignores it): the snapshots go with the image, each reported.
    const deletedByEc2: string[] = [];
    proxy.intercept("DeregisterImage", async (body, forward) => {
      const image = body.get("ImageId") ?? "";
      const snapshots = await snapshotsOf(image).catch(() => []);
      const answer = await forward();
      if (answer.status !== 200 || body.get("DeleteAssociatedSnapshots") !== "true") return answer;
      for (const snapshot of snapshots) await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshot }));
      deletedByEc2.push(...snapshots);
      const results = snapshots.map((s) => `<item><snapshotId>${s}</snapshotId><returnCode>success</returnCode></item>`).join("");
      assert.match(answer.body, /<\/DeregisterImageResponse>/);
      return { status: 200, body: answer.body.replace("</DeregisterImageResponse>", `<deleteSnapshotResultSet>${results}</deleteSnapshotResultSet></DeregisterImageResponse>`) };
    });
    const denied = { error: { status: 403, code: "UnauthorizedOperation", message: "You are not authorized to perform this operation." } };
    proxy.inject("CopyImage", denied);
    const file = await template("copy-denied", `${amazonLinux}    ami_regions: [us-west-2]\n`);
    const run = await runKiln(["build", file, "--output-dir", join(dir, "out-denied")], env);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /copying the image to us-west-2 \(ec2:CopyImage\): UnauthorizedOperation/);
    assert.equal(new URLSearchParams(proxy.bodies.get("DeregisterImage")?.[0] ?? "").get("DeleteAssociatedSnapshots"), "true");
    assert.ok(deletedByEc2.length > 0, "EC2 deleted the image's snapshots with it");
    assert.deepEqual(await ownImages(), [], "no image left");
    assert.deepEqual(await kilnSnapshots(), [], "no snapshot left");
    assert.equal(proxy.calls.get("DeleteSnapshot") ?? 0, 0, "none deleted twice");
    assert.deepEqual(await journals(), []);

    // An endpoint without the feature (moto as it is) answers no results: each snapshot is deleted by itself.
    await moto.reset();
    proxy.reset();
    proxy.inject("CopyImage", denied);
    const plain = await runKiln(["build", file, "--output-dir", join(dir, "out-denied-2")], env);
    assert.equal(plain.code, 1, plain.stdout + plain.stderr);
    assert.ok((proxy.calls.get("DeleteSnapshot") ?? 0) > 0);
    assert.deepEqual(await ownImages(), [], "no image left");
    assert.deepEqual(await kilnSnapshots(), [], "no snapshot left");
    assert.deepEqual(await journals(), []);
  });

  it("kiln cleanup removes the snapshots a journal names, also once their image is gone", async () => {
    // A build killed after its image existed, whose image someone deregistered since (moto leaves the snapshot).
    const { image, snapshots } = await madeImage("kiln-killed");
    assert.ok(snapshots.length > 0);
    await ec2.send(new CreateTagsCommand({ Resources: snapshots, Tags: kilnTag("killed-20200101-000000-abcdef") }));
    await ec2.send(new DeregisterImageCommand({ ImageId: image }));
    const dead = spawnSync(process.execPath, ["-e", ""]).pid;
    await mkdir(join(state, "builds"), { recursive: true });
    await writeFile(join(state, "builds", "killed-20200101-000000-abcdef.json"), JSON.stringify({
      buildId: "killed-20200101-000000-abcdef", pid: dead, host: hostname(), region: "us-east-1", endpoint: proxy.endpoint, startedAt: "2020-01-01T00:00:00.000Z",
      resources: [{ type: "snapshot", id: snapshots[0], temporary: false }, { type: "image", id: image, temporary: false }],
    }));
    const cleanup = await runKiln(["cleanup", "--stale", "--yes"], env);
    assert.equal(cleanup.code, 0, cleanup.stdout + cleanup.stderr);
    assert.match(cleanup.stdout, new RegExp(`removed image ${image}[^]*removed snapshot ${snapshots[0] ?? ""}`), "the image first, then its snapshot");
    assert.match(cleanup.stdout, /^2 removed, 0 could not be$/m);
    assert.deepEqual(await kilnSnapshots(), []);
    assert.deepEqual(await journals(), []);
  });

  it("a build killed with SIGKILL after its image exists journals the image's snapshots, and kiln cleanup removes them after the image is gone", async () => {
    // Held while copying: by then the image is available and its snapshots known.
    proxy.inject("CopyImage", { delayMs: 15_000 });
    const build = startKiln(["build", await template("killed", `${amazonLinux}    ami_regions: [us-west-2]\n`), "--output-dir", join(dir, "out-killed")], env);
    const deadline = Date.now() + 60_000;
    while (!/\d+\/\d+ share and copy image/.test(build.stdout()) && build.child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    build.child.kill("SIGKILL");
    await build.done;
    const [image] = await ownImages();
    const snapshots = await snapshotsOf(image?.ImageId ?? "");
    assert.ok(snapshots.length > 0, build.stdout());
    const [journal] = await journals();
    const named = (JSON.parse(await readFile(join(state, "builds", journal ?? ""), "utf8")) as { resources: { type: string; id: string }[] }).resources;
    assert.deepEqual(named.filter((r) => r.type === "snapshot").map((r) => r.id), snapshots, "the journal names the image's snapshots");
    // Someone deregisters the image behind kiln's back: only the snapshots are left.
    await ec2.send(new DeregisterImageCommand({ ImageId: image?.ImageId ?? "" }));
    const cleanup = await runKiln(["cleanup", "--stale", "--yes"], env);
    assert.equal(cleanup.code, 0, cleanup.stdout + cleanup.stderr);
    assert.match(cleanup.stdout, new RegExp(`removed snapshot ${snapshots[0] ?? ""}`));
    assert.deepEqual(await kilnSnapshots(), []);
    assert.deepEqual(await journals(), []);
  });

  it("kiln sweep removes kiln's snapshots no image uses, older than asked, and leaves those an image uses", async () => {
    const old = "crashed-20200101-000000-abcdef";
    const young = `young-${new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15)}-abcdef`;
    const volume = (await ec2.send(new CreateVolumeCommand({ AvailabilityZone: "us-east-1a", Size: 1 }))).VolumeId;
    const orphan = async (buildId: string) => (await ec2.send(new CreateSnapshotCommand({ VolumeId: volume, TagSpecifications: [{ ResourceType: "snapshot", Tags: kilnTag(buildId) }] }))).SnapshotId ?? "";
    const [orphaned, youngOrphan] = [await orphan(old), await orphan(young)];
    const { image, snapshots: [used] } = await madeImage("kiln-kept");
    await ec2.send(new CreateTagsCommand({ Resources: [used ?? ""], Tags: kilnTag(old) }));
    const sweepEnv = { ...env, AWS_ENDPOINT_URL: moto.endpoint };
    const dry = await runKiln(["sweep", "--region", "us-east-1", "--older-than", "6h", "--dry-run"], sweepEnv);
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, new RegExp(`would remove snapshot ${orphaned} \\(build ${old}\\)`));
    assert.doesNotMatch(dry.stdout, new RegExp(`${used ?? "-"}|${youngOrphan}`), "neither the one an image uses nor a young one");
    const run = await runKiln(["sweep", "--region", "us-east-1", "--older-than", "6h"], sweepEnv);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, new RegExp(`removed snapshot ${orphaned}`));
    assert.match(run.stdout, /^1 removed, 0 could not be$/m);
    assert.deepEqual((await kilnSnapshots()).sort(), [used, youngOrphan].sort());
    assert.deepEqual((await ownImages()).map((i) => i.ImageId), [image], "images are never swept");
  });
});
