import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, beforeEach, describe, it } from "node:test";
import {
  CompleteSnapshotCommand, GetSnapshotBlockCommand, ListSnapshotBlocksCommand, PutSnapshotBlockCommand, RequestThrottledException,
  InternalServerException, StartSnapshotCommand, ValidationException, type EBSClient,
} from "@aws-sdk/client-ebs";
import {
  DescribeImageAttributeCommand, DescribeImagesCommand, DescribeSnapshotsCommand, EC2Client, GetImageBlockPublicAccessStateCommand,
  ModifyImageAttributeCommand, RegisterImageCommand,
} from "@aws-sdk/client-ec2";
import { classify } from "../src/publish/block-pool.js";
import { startAwsStandIn, type AwsStandIn } from "./helpers/aws-stand-in.js";

// The stand-in answers as AWS documents where moto 5.2 is lenient (FACTS.md): every case here
// goes through the real SDK clients and the proxy, as kiln publish will.
const block = (fill: number): Buffer => Buffer.alloc(524_288, fill);
const sha = (data: Buffer | Uint8Array): Buffer => createHash("sha256").update(data).digest();
const linear = (blocks: Buffer[]): string => sha(Buffer.concat(blocks.map(sha))).toString("base64");

describe("the AWS stand-in speaks for AWS where moto is lenient", { timeout: 5 * 60_000 }, () => {
  let aws: AwsStandIn;
  let ebs: EBSClient;
  let ec2: EC2Client;
  before(async () => {
    aws = await startAwsStandIn();
    ebs = aws.ebsClient();
    ec2 = new EC2Client({ region: "us-east-1", endpoint: aws.proxy.endpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
  });
  after(async () => { await aws?.stop(); });
  beforeEach(async () => { await aws.reset(); });

  async function upload(blocks: Buffer[], volumeSize = 1): Promise<string> {
    const { SnapshotId } = await ebs.send(new StartSnapshotCommand({ VolumeSize: volumeSize, Timeout: 60 }));
    for (const [i, data] of blocks.entries()) {
      await ebs.send(new PutSnapshotBlockCommand({ SnapshotId, BlockIndex: i, BlockData: data, DataLength: data.length, Checksum: sha(data).toString("base64"), ChecksumAlgorithm: "SHA256" }));
    }
    return SnapshotId ?? "";
  }
  const state = async (id: string) => (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [id] }))).Snapshots?.[0];
  async function completed(id: string): Promise<string | undefined> {
    for (let i = 0; i < 10; i++) {
      const s = await state(id);
      if (s?.State !== "pending") return s?.State;
    }
    return "pending";
  }

  it("routes EBS direct calls by method and path, and keeps a PutSnapshotBlock's binary body intact", async () => {
    const data = block(0);
    data.write("\u00ff\u0000\u00fe binary", 0, "latin1");
    const id = await upload([data]);
    await ebs.send(new CompleteSnapshotCommand({ SnapshotId: id, ChangedBlocksCount: 1 }));
    assert.equal(await completed(id), "completed");
    const [listed] = (await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: id }))).Blocks ?? [];
    const got = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: id, BlockIndex: 0, BlockToken: listed?.BlockToken }));
    const bytes = await got.BlockData?.transformToByteArray();
    assert.ok(bytes !== undefined && Buffer.from(bytes).equals(data), "the block comes back byte for byte");
    assert.equal(got.Checksum, sha(data).toString("base64"), "x-amz-Checksum is the block's own SHA-256");
    assert.equal(got.DataLength, 524_288);
    assert.deepEqual(aws.proxy.order.filter((a) => a !== "DescribeSnapshots"), ["StartSnapshot", "PutSnapshotBlock", "CompleteSnapshot", "ListSnapshotBlocks", "GetSnapshotBlock"]);
    assert.equal(aws.ebs.snapshot(id)?.blocks.get(0), sha(data).toString("base64"));
  });

  it("refuses a block whose checksum, length or index is wrong, or a block after CompleteSnapshot", async () => {
    const { SnapshotId } = await ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }));
    const data = block(1);
    const put = (over: Partial<ConstructorParameters<typeof PutSnapshotBlockCommand>[0]>) => ebs.send(new PutSnapshotBlockCommand({ SnapshotId, BlockIndex: 0, BlockData: data, DataLength: data.length, Checksum: sha(data).toString("base64"), ChecksumAlgorithm: "SHA256", ...over }));
    await assert.rejects(put({ Checksum: sha(block(2)).toString("base64") }), (e) => e instanceof ValidationException && e.Reason === "INVALID_PARAMETER_VALUE" && /checksum/.test(e.message));
    await assert.rejects(put({ BlockData: Buffer.alloc(4096), DataLength: 4096, Checksum: sha(Buffer.alloc(4096)).toString("base64") }), ValidationException);
    await assert.rejects(put({ BlockIndex: 2048 }), (e) => e instanceof ValidationException && e.Reason === "INVALID_BLOCK", "1 GiB holds blocks 0..2047");
    await put({ BlockIndex: 2047 });
    await ebs.send(new CompleteSnapshotCommand({ SnapshotId, ChangedBlocksCount: 1 }));
    await assert.rejects(put({ BlockIndex: 1 }), (e) => e instanceof ValidationException && /pending/.test(e.message));
  });

  it("ends a snapshot in error when CompleteSnapshot's count or LINEAR aggregate is wrong, after a pending while", async () => {
    const blocks = [block(3), block(4)];
    const good = await upload(blocks);
    const answer = await ebs.send(new CompleteSnapshotCommand({ SnapshotId: good, ChangedBlocksCount: 2, Checksum: linear(blocks), ChecksumAlgorithm: "SHA256", ChecksumAggregationMethod: "LINEAR" }));
    assert.equal(answer.Status, "pending");
    assert.deepEqual([(await state(good))?.State, (await state(good))?.State, (await state(good))?.State], ["pending", "pending", "completed"]);

    const badSum = await upload(blocks);
    await ebs.send(new CompleteSnapshotCommand({ SnapshotId: badSum, ChangedBlocksCount: 2, Checksum: linear([blocks[1] ?? block(0), blocks[0] ?? block(0)]), ChecksumAlgorithm: "SHA256", ChecksumAggregationMethod: "LINEAR" }));
    assert.equal(await completed(badSum), "error", "digests concatenated out of block order");
    const badCount = await upload(blocks);
    await ebs.send(new CompleteSnapshotCommand({ SnapshotId: badCount, ChangedBlocksCount: 3 }));
    assert.equal(await completed(badCount), "error");
  });

  it("gives the same snapshot for the same ClientToken, and errors a snapshot not completed within its Timeout", async () => {
    const first = await ebs.send(new StartSnapshotCommand({ VolumeSize: 1, ClientToken: "kiln-1", Timeout: 10 }));
    const again = await ebs.send(new StartSnapshotCommand({ VolumeSize: 1, ClientToken: "kiln-1", Timeout: 10 }));
    assert.equal(again.SnapshotId, first.SnapshotId);
    aws.ebs.advanceClock(11 * 60_000);
    assert.equal((await state(first.SnapshotId ?? ""))?.State, "error");
    const data = block(5);
    await assert.rejects(ebs.send(new PutSnapshotBlockCommand({ SnapshotId: first.SnapshotId, BlockIndex: 0, BlockData: data, DataLength: data.length, Checksum: sha(data).toString("base64"), ChecksumAlgorithm: "SHA256" })), ValidationException);
  });

  it("lists blocks only of a completed snapshot, in pages of MaxResults, and checks block tokens", async () => {
    const blocks = Array.from({ length: 205 }, (_, i) => block(i % 256));
    const id = await upload(blocks);
    await assert.rejects(ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: id })), ValidationException, "pending: not readable yet");
    await ebs.send(new CompleteSnapshotCommand({ SnapshotId: id, ChangedBlocksCount: 205 }));
    assert.equal(await completed(id), "completed");
    await assert.rejects(ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: id, MaxResults: 10_001 })), ValidationException);
    const pages: number[][] = [];
    let NextToken: string | undefined;
    do {
      const page = await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: id, MaxResults: 10, NextToken }));
      pages.push((page.Blocks ?? []).map((b) => b.BlockIndex ?? -1));
      NextToken = page.NextToken;
    } while (NextToken !== undefined);
    assert.deepEqual(pages.map((p) => p.length), [100, 100, 5], "below 100, AWS still gives 100 a page");
    assert.deepEqual(pages.flat(), blocks.map((_, i) => i));
    await assert.rejects(ebs.send(new GetSnapshotBlockCommand({ SnapshotId: id, BlockIndex: 3, BlockToken: "AAAA" })), (e) => e instanceof ValidationException && e.Reason === "INVALID_BLOCK_TOKEN");
    await assert.rejects(ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: id, NextToken: "bm9wZQ" })), (e) => e instanceof ValidationException && e.Reason === "INVALID_PAGE_TOKEN");
  });

  it("throttles, fails, loses and drops EBS calls in EBS's error shape", async () => {
    const client = aws.ebsClient({ maxAttempts: 1 });
    aws.proxy.inject("StartSnapshot", { throttle: 1 });
    await assert.rejects(client.send(new StartSnapshotCommand({ VolumeSize: 1 })), (e) => e instanceof RequestThrottledException && e.Reason === "ACCOUNT_THROTTLED" && e.$metadata.httpStatusCode === 400 && classify(e) === "throttled");
    aws.proxy.inject("StartSnapshot", { throttle: 2 });
    assert.match((await ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }))).SnapshotId ?? "", /^snap-/, "the SDK retried past two throttles");
    aws.proxy.inject("StartSnapshot", { error: { status: 400, code: "ValidationException", message: "bad size", reason: "INVALID_VOLUME_SIZE" } });
    await assert.rejects(client.send(new StartSnapshotCommand({ VolumeSize: 1 })), (e) => e instanceof ValidationException && e.Reason === "INVALID_VOLUME_SIZE");
    aws.proxy.inject("StartSnapshot", { loseResponse: 1 });
    await assert.rejects(client.send(new StartSnapshotCommand({ VolumeSize: 1 })), InternalServerException);
    aws.proxy.inject("PutSnapshotBlock", { dropConnection: 1 });
    const { SnapshotId } = await ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }));
    const data = block(9);
    await assert.rejects(client.send(new PutSnapshotBlockCommand({ SnapshotId, BlockIndex: 0, BlockData: data, DataLength: data.length, Checksum: sha(data).toString("base64"), ChecksumAlgorithm: "SHA256" })), (e: Error) => !(e instanceof ValidationException));
    assert.equal(aws.ebs.snapshot(SnapshotId ?? "")?.blocks.size, 0, "the dropped block never reached the cloud");
    assert.equal(aws.proxy.calls.get("PutSnapshotBlock"), 1);
  });

  it("keeps what RegisterImage asked for, refuses what AWS refuses, and shows it in DescribeImages", async () => {
    const id = await upload([block(7)]);
    const request = {
      Name: "kiln-published", Architecture: "arm64" as const, RootDeviceName: "/dev/xvda", BootMode: "uefi" as const, EnaSupport: true, ImdsSupport: "v2.0" as const, TpmSupport: "v2.0" as const,
      VirtualizationType: "hvm", SriovNetSupport: "simple", BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: id, VolumeSize: 8, VolumeType: "gp3" as const, DeleteOnTermination: true } }],
    };
    await assert.rejects(ec2.send(new RegisterImageCommand(request)), { name: "IncorrectState" }, "the snapshot is still pending");
    await ebs.send(new CompleteSnapshotCommand({ SnapshotId: id, ChangedBlocksCount: 1 }));
    await assert.rejects(ec2.send(new RegisterImageCommand(request)), { name: "IncorrectState" }, "sealing shows as pending");
    assert.equal(await completed(id), "completed");
    await assert.rejects(ec2.send(new RegisterImageCommand({ ...request, BootMode: "legacy-bios" })), { name: "InvalidParameterCombination" });
    await assert.rejects(ec2.send(new RegisterImageCommand({ ...request, ImdsSupport: "v1.0" as "v2.0" })), { name: "InvalidParameterValue" });
    const { ImageId } = await ec2.send(new RegisterImageCommand(request));
    const [image] = (await ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId ?? ""] }))).Images ?? [];
    assert.deepEqual(
      [image?.Architecture, image?.RootDeviceName, image?.BootMode, image?.EnaSupport, image?.ImdsSupport, image?.TpmSupport, image?.VirtualizationType, image?.SriovNetSupport, image?.Name],
      ["arm64", "/dev/xvda", "uefi", true, "v2.0", "v2.0", "hvm", "simple", "kiln-published"],
    );
    assert.deepEqual(image?.BlockDeviceMappings, [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: id, VolumeSize: 8, VolumeType: "gp3", DeleteOnTermination: true } }]);
  });

  it("answers the account's block public access for AMIs, and refuses making an image public while it blocks", async () => {
    const { ImageId } = await ec2.send(new RegisterImageCommand({ Name: "kiln-bpa", RootDeviceName: "/dev/xvda" }));
    assert.equal((await ec2.send(new GetImageBlockPublicAccessStateCommand({}))).ImageBlockPublicAccessState, "unblocked");
    aws.setImageBlockPublicAccess("block-new-sharing");
    assert.equal((await ec2.send(new GetImageBlockPublicAccessStateCommand({}))).ImageBlockPublicAccessState, "block-new-sharing");
    await assert.rejects(ec2.send(new ModifyImageAttributeCommand({ ImageId, LaunchPermission: { Add: [{ Group: "all" }] } })), { name: "OperationNotPermitted" });
    await ec2.send(new ModifyImageAttributeCommand({ ImageId, LaunchPermission: { Add: [{ UserId: "123456789013" }] } }));
    const shared = await ec2.send(new DescribeImageAttributeCommand({ ImageId, Attribute: "launchPermission" }));
    assert.deepEqual(shared.LaunchPermissions, [{ UserId: "123456789013" }], "shared with the account, never with all");
    aws.setImageBlockPublicAccess("unblocked");
    await ec2.send(new ModifyImageAttributeCommand({ ImageId, LaunchPermission: { Add: [{ Group: "all" }] } }));
    assert.ok((await ec2.send(new DescribeImageAttributeCommand({ ImageId, Attribute: "launchPermission" }))).LaunchPermissions?.some((p) => p.Group === "all"));
  });

  it("RegisterImage refuses a volume smaller than its snapshot, io1 without Iops, a root device not in the mapping", async () => {
    const data = Buffer.alloc(524_288, 3);
    const { SnapshotId } = await ebs.send(new StartSnapshotCommand({ VolumeSize: 4, Timeout: 60 }));
    const id = SnapshotId ?? "";
    await ebs.send(new PutSnapshotBlockCommand({ SnapshotId: id, BlockIndex: 0, BlockData: data, DataLength: data.length, Checksum: createHash("sha256").update(data).digest("base64"), ChecksumAlgorithm: "SHA256" }));
    await ebs.send(new CompleteSnapshotCommand({ SnapshotId: id, ChangedBlocksCount: 1 }));
    for (let i = 0; i < 10 && (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [id] }))).Snapshots?.[0]?.State === "pending"; i++);
    const request = (ebsDevice: object, root = "/dev/xvda") => new RegisterImageCommand({
      Name: `kiln-review-${Math.random()}`, Architecture: "x86_64", RootDeviceName: root, VirtualizationType: "hvm",
      BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: id, DeleteOnTermination: true, ...ebsDevice } }],
    });
    await assert.rejects(ec2.send(request({ VolumeSize: 2, VolumeType: "gp3" })), { name: "InvalidBlockDeviceMapping" });
    await assert.rejects(ec2.send(request({ VolumeSize: 4, VolumeType: "io1" })), { name: "InvalidParameterCombination" });
    await assert.rejects(ec2.send(request({ VolumeSize: 4, VolumeType: "gp3" }, "/dev/sda1")), { name: "InvalidBlockDeviceMapping" });
    assert.match((await ec2.send(request({ VolumeSize: 4, VolumeType: "io1", Iops: 100 }))).ImageId ?? "", /^ami-/);
    assert.match((await ec2.send(request({ VolumeSize: 4, VolumeType: "gp3" }))).ImageId ?? "", /^ami-/);
  });
});
