import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand, type EBSClient } from "@aws-sdk/client-ebs";
import { DescribeSnapshotsCommand, EC2Client, RegisterImageCommand } from "@aws-sdk/client-ec2";
import { startAwsStandIn, type AwsStandIn } from "./helpers/aws-stand-in.js";

// Review of issue 15 against the EC2 API reference: RegisterImage refusals moto 5.2 does not make.
describe("the stand-in's RegisterImage refuses what AWS refuses", { timeout: 5 * 60_000 }, () => {
  let aws: AwsStandIn;
  let ebs: EBSClient;
  let ec2: EC2Client;
  before(async () => {
    aws = await startAwsStandIn();
    ebs = aws.ebsClient();
    ec2 = new EC2Client({ region: "us-east-1", endpoint: aws.proxy.endpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
  });
  after(async () => { await aws?.stop(); });

  it("a volume smaller than its snapshot, io1 without Iops, a root device not in the mapping", async () => {
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
