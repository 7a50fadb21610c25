import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { CreateImageCommand, CreateSubnetCommand, CreateVpcCommand, DescribeImagesCommand, DescribeInstancesCommand, DescribeKeyPairsCommand, EC2Client, RunInstancesCommand } from "@aws-sdk/client-ec2";
import { awsErrorAnswer, FaultProxy, type Interceptor } from "./helpers/fault-proxy.js";
import { runKiln } from "./helpers/kiln-process.js";
import type { Moto } from "./helpers/moto.js";
import { startAwsStandIn, type AwsStandIn } from "./helpers/aws-stand-in.js";

// What moto accepts and AWS refuses (or answers otherwise), each checked field by field in the
// request kiln sends, with the proxy answering as AWS does where moto does not.
const amazonLinux = "    source_ami_filter: {filters: {name: amzn2-ami-hvm-*-x86_64-gp2}, owners: [amazon], most_recent: true}\n    instance_type: t3.micro\n";
const byKiln = [{ Name: "tag-key", Values: ["kiln:build-id"] }];

describe("amazon-ebs as on real AWS (moto behind a proxy that answers as AWS does)", { timeout: 10 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-aws-"));
  let aws: AwsStandIn;
  let moto: Moto;
  /** Where the template's EC2 endpoint points. */
  let proxy: FaultProxy;
  /** A second proxy: where STS, IAM and other regions' EC2 go, never the template's EC2 endpoint. */
  let others: FaultProxy;
  let ec2: EC2Client;
  let checkIp: ReturnType<typeof createServer>;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    aws = await startAwsStandIn({ KILN_STATE_DIR: join(dir, "state") }, { MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION: "true" });
    ({ moto, proxy: others } = aws);
    proxy = new FaultProxy(moto.endpoint);
    await proxy.start();
    ec2 = aws.ec2();
    checkIp = createServer((_req, res) => res.end("198.51.100.7\n"));
    await new Promise<void>((resolve) => checkIp.listen(0, "127.0.0.1", resolve));
    env = { ...aws.env, KILN_CHECK_IP_URL: `http://127.0.0.1:${(checkIp.address() as { port: number }).port}/` };
  });
  after(async () => {
    checkIp?.close();
    await proxy?.stop();
    await aws?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    proxy.reset();
    await aws.reset();
  });

  async function template(name: string, builder: string, rest = ""): Promise<string> {
    const file = join(dir, `${name}.yaml`);
    const communicator = builder.includes("communicator:") ? "" : "    communicator: none\n";
    await writeFile(file, `name: ${name}\nbuilders:\n  - type: amazon-ebs\n    region: us-east-1\n    endpoint: ${proxy.endpoint}\n    ami_name: kiln-${name}-\${{ uuid }}\n    wait: {delay_seconds: 0.05, timeout_seconds: 30}\n${communicator}${amazonLinux}${builder}${rest}`);
    return file;
  }
  const build = (file: string, extra: NodeJS.ProcessEnv = {}) => runKiln(["build", file, "--output-dir", join(dir, "out")], { ...env, ...extra });
  const request = (p: FaultProxy, action: string, at = -1) => new URLSearchParams(p.bodies.get(action)?.at(at) ?? "");
  const kilnKeyPairs = async () => ((await ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs ?? []).filter((k) => k.KeyName?.startsWith("kiln-"));

  it("sends the template's endpoint to EC2 in the build's region only: STS, IAM and a copy region keep their own", async () => {
    const file = await template("endpoints", "    ami_regions: [us-west-2]\n    temporary_iam_instance_profile_policy_document: {Statement: [{Effect: Allow, Action: ['s3:GetObject'], Resource: '*'}]}\n");
    const run = await build(file);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const toTemplateEndpoint = [...proxy.calls.keys()];
    assert.ok(toTemplateEndpoint.includes("RunInstances") && toTemplateEndpoint.includes("CreateImage"));
    // The copy is tagged in the call itself (sweep must know it while it is pending).
    const copy = request(others, "CopyImage");
    assert.equal(copy.get("TagSpecification.1.ResourceType"), "image");
    assert.deepEqual([copy.get("TagSpecification.1.Tag.1.Key"), copy.get("TagSpecification.2.ResourceType")], ["kiln:build-id", "snapshot"]);
    for (const elsewhere of ["GetCallerIdentity", "CreateRole", "CreateInstanceProfile", "CopyImage"]) {
      assert.ok(!toTemplateEndpoint.includes(elsewhere), `${elsewhere} did not go to the template's EC2 endpoint`);
      assert.ok(others.calls.has(elsewhere), `${elsewhere} went to its own endpoint`);
    }
  });

  it("keeps IMDSv2 required for kiln's own templates and makes the image require it with imds_support, copies included", async () => {
    const file = await template("imds", "    imds_support: v2.0\n    ami_regions: [us-west-2]\n");
    const run = await build(file);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(request(proxy, "RunInstances").get("MetadataOptions.HttpTokens"), "required");
    const modified = [...(proxy.bodies.get("ModifyImageAttribute") ?? []), ...(others.bodies.get("ModifyImageAttribute") ?? [])].map((b) => new URLSearchParams(b));
    assert.deepEqual(modified.map((m) => m.get("ImdsSupport.Value")), ["v2.0", "v2.0"], "the image and its copy");
    const plan = await runKiln(["plan", file, "--offline"], env);
    assert.match(plan.stdout, /metadata service: IMDSv2 only \(http_tokens required\); the image requires IMDSv2 \(imds_support v2\.0\)/);
    // User data that reads the metadata without a token gets 401 under required: said before anything runs.
    const v1 = await template("imds-v1", "    user_data: \"#!/bin/sh\\ncurl -s http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key > /root/.ssh/authorized_keys\\n\"\n");
    const validated = await runKiln(["validate", v1], env);
    assert.equal(validated.code, 0, validated.stderr);
    assert.match(validated.stderr, /warning: imds-v1\.yaml: builders\.0: user data reads the instance metadata without an IMDSv2 token at user_data:2, and http_tokens is required: that read gets 401 on AWS/);
  });

  it("opens SSH to this machine's own address on its route into the VPC when ssh_interface is private, never to its public /32", async () => {
    const vpc = (await ec2.send(new CreateVpcCommand({ CidrBlock: "10.77.0.0/16" }))).Vpc?.VpcId ?? "";
    const subnet = (await ec2.send(new CreateSubnetCommand({ VpcId: vpc, CidrBlock: "10.77.1.0/24", AvailabilityZone: "us-east-1a" }))).Subnet?.SubnetId ?? "";
    const file = await template("private", `    subnet_id: ${subnet}\n    communicator: ssh\n    ssh_username: root\n    ssh_interface: private_ip\n    ssh_timeout: 1\n    ssh_host_key_wait: 0\n`);
    const run = await build(file);
    // Nothing listens at the instance's (moto's) address: the build fails connecting, after the group is made.
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const route = execFileSync("ip", ["-o", "route", "get", "10.77.1.1"], { encoding: "utf8" });
    const source = /\bsrc (\S+)/.exec(route)?.[1];
    assert.equal(request(proxy, "AuthorizeSecurityGroupIngress").get("IpPermissions.1.IpRanges.1.CidrIp"), `${source}/32`);
    assert.match(run.stdout, /\(SSH to the instance's private ip\)/);
    // This machine reaches that VPC only by its default route (no VPN, no peering): kiln says so.
    assert.match(run.stdout, /this machine reaches 10\.77\.1\.0\/24 only by its default route: the port is opened to \S+\/32/);
    assert.match(run.stdout + run.stderr, /10\.77\.1\.\d+/, "and connected to the private address");
    const plan = await runKiln(["plan", file, "--offline"], env);
    assert.match(plan.stdout, /port 22\/tcp from this machine's own address on its route into the subnet \/32/);
    assert.deepEqual(await kilnKeyPairs(), []);
  });

  it("launches only in a subnet whose zone offers the instance type, and refuses a VPC with none", async () => {
    const vpc = (await ec2.send(new CreateVpcCommand({ CidrBlock: "10.78.0.0/16" }))).Vpc?.VpcId ?? "";
    // The roomiest subnet is in us-east-1e, where (moto says, as AWS does for some types) t3.micro is not offered.
    await ec2.send(new CreateSubnetCommand({ VpcId: vpc, CidrBlock: "10.78.16.0/20", AvailabilityZone: "us-east-1e" }));
    const offered = (await ec2.send(new CreateSubnetCommand({ VpcId: vpc, CidrBlock: "10.78.1.0/24", AvailabilityZone: "us-east-1a" }))).Subnet?.SubnetId ?? "";
    const run = await build(await template("zones", `    vpc_id: ${vpc}\n`));
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(request(proxy, "RunInstances").get("SubnetId"), offered);
    assert.equal(request(proxy, "DescribeInstanceTypeOfferings").get("Filter.1.Value.1"), "t3.micro");

    await moto.reset();
    proxy.reset();
    const lonely = (await ec2.send(new CreateVpcCommand({ CidrBlock: "10.79.0.0/16" }))).Vpc?.VpcId ?? "";
    await ec2.send(new CreateSubnetCommand({ VpcId: lonely, CidrBlock: "10.79.1.0/24", AvailabilityZone: "us-east-1e" }));
    const refused = await build(await template("nozone", `    vpc_id: ${lonely}\n`));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /no subnet of vpc-\w+ is in a zone that offers t3\.micro \(its subnets are in us-east-1e; t3\.micro is offered in us-east-1a/);
    assert.equal(proxy.calls.get("RunInstances") ?? 0, 0);
  });

  it("refuses an AMI name taken in the build region or a copy region before creating anything", async () => {
    const west = aws.ec2("us-west-2");
    const image = (await west.send(new DescribeImagesCommand({ Owners: ["amazon"], Filters: [{ Name: "name", Values: ["amzn2-ami-hvm-*-x86_64-gp2"] }] }))).Images?.[0]?.ImageId ?? "";
    const instance = (await west.send(new RunInstancesCommand({ ImageId: image, InstanceType: "t3.micro", MinCount: 1, MaxCount: 1 }))).Instances?.[0]?.InstanceId ?? "";
    await west.send(new CreateImageCommand({ InstanceId: instance, Name: "kiln-taken" }));
    const file = join(dir, "taken.yaml");
    await writeFile(file, `name: taken\nbuilders:\n  - type: amazon-ebs\n    region: us-east-1\n    endpoint: ${proxy.endpoint}\n    ami_name: kiln-taken\n    communicator: none\n    ami_regions: [us-west-2]\n${amazonLinux}`);
    const run = await build(file);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: an image named "kiln-taken" exists already in us-west-2: ami-\w+/m);
    assert.equal(proxy.calls.get("ImportKeyPair") ?? 0, 0, "no key pair, group or instance was made");
    assert.equal(proxy.calls.get("RunInstances") ?? 0, 0);
  });

  it("waits for the role and the instance profile to exist before giving them a policy and a role", async () => {
    let unseen = 2;
    others.intercept("GetRole", async (_body, forward) => (unseen-- > 0 ? awsErrorAnswer(404, "NoSuchEntity", "The role with name kiln-x cannot be found.", "query") : forward()));
    const run = await build(await template("iam", "    temporary_iam_instance_profile_policy_document: {Statement: [{Effect: Allow, Action: ['s3:GetObject'], Resource: '*'}]}\n"));
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const order = others.order.filter((a) => /Role|InstanceProfile/.test(a));
    assert.deepEqual(order.slice(0, 4), ["CreateRole", "GetRole", "GetRole", "GetRole"], "asked until IAM knew it");
    assert.ok(order.indexOf("PutRolePolicy") > order.lastIndexOf("GetRole") || order.indexOf("PutRolePolicy") > 3);
    assert.ok(order.indexOf("GetInstanceProfile") > order.indexOf("CreateInstanceProfile") && order.indexOf("AddRoleToInstanceProfile") > order.indexOf("GetInstanceProfile"));
  });

  it("waits hours for an image by default, and a wait cut short by aws_polling names the image and the setting", async () => {
    // AWS keeps a large image pending for a long time; moto never does. The proxy says pending for a while.
    let pending = 0;
    proxy.intercept("DescribeImages", async (body, forward) => {
      const answer = await forward();
      if (body.get("ImageId.1") === null || pending-- <= 0) return answer;
      return { ...answer, body: answer.body.replace(/<imageState>available<\/imageState>/g, "<imageState>pending</imageState>") };
    });
    pending = 20;
    const patient = await build(await template("slow", ""));
    assert.equal(patient.code, 0, patient.stdout + patient.stderr);
    pending = 1000;
    const hasty = await build(await template("hasty", "    aws_polling: {delay_seconds: 0.05, max_attempts: 4}\n"));
    assert.equal(hasty.code, 1, hasty.stdout + hasty.stderr);
    assert.match(hasty.stderr, /gave up waiting for image ami-\w+ in us-east-1 to become available after 0\.2s \(polled every 0\.05s\)\n {2}\(raise aws_polling\.max_attempts if it only needs longer/);
    pending = 1000;
    const env2 = await build(await template("env-attempts", ""), { AWS_MAX_ATTEMPTS: "3", AWS_POLL_DELAY_SECONDS: "0.05" });
    assert.equal(env2.code, 1);
    assert.match(env2.stderr, /raise AWS_MAX_ATTEMPTS if it only needs longer/);
    proxy.intercept("DescribeImages", async () => undefined);
    const instances = (await ec2.send(new DescribeInstancesCommand({ Filters: byKiln }))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    assert.ok(instances.every((i) => i.State?.Name === "terminated"));
  });

  it("encrypts every EBS volume of the source image with encrypt_boot, and fails a build whose image still has an unencrypted snapshot", async () => {
    // AWS makes encrypted snapshots of encrypted volumes; moto's CreateImage ignores the volumes. The proxy answers as AWS.
    const asAws: Interceptor = async (body, forward) => {
      const answer = await forward();
      if (body.get("ImageId.1") === null) return answer;
      return { ...answer, body: answer.body.replace(/<ebs>/g, "<ebs><encrypted>true</encrypted>") };
    };
    proxy.intercept("DescribeImages", asAws);
    others.intercept("DescribeImages", asAws);
    const file = await template("encrypted", "    encrypt_boot: true\n    kms_key_id: alias/kiln-builds\n    ami_regions: [us-west-2]\n    ami_region_kms_key_ids: {us-west-2: ''}\n");
    const run = await build(file);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const launch = request(proxy, "RunInstances");
    assert.equal(launch.get("BlockDeviceMapping.1.DeviceName"), "/dev/xvda", "the source image's root volume, as it maps it");
    assert.equal(launch.get("BlockDeviceMapping.1.Ebs.Encrypted"), "true");
    assert.equal(launch.get("BlockDeviceMapping.1.Ebs.KmsKeyId"), "alias/kiln-builds");
    assert.match(launch.get("BlockDeviceMapping.1.Ebs.SnapshotId") ?? "", /^snap-/);
    const copy = request(others, "CopyImage");
    assert.equal(copy.get("Encrypted"), "true");
    assert.equal(copy.get("KmsKeyId"), null, "\"\": that region's AWS-managed key");

    // moto as it is: an image whose snapshot is not encrypted (a volume attached during the build, say) fails.
    proxy.intercept("DescribeImages", async () => undefined);
    await moto.reset();
    const unencrypted = await build(await template("unencrypted", "    encrypt_boot: true\n"));
    assert.equal(unencrypted.code, 1);
    assert.match(unencrypted.stderr, /^error: image ami-\w+ in us-east-1 has unencrypted snapshots: \/dev\/\w+ \(snap-\w+\), and encrypt_boot is set/m);
    assert.equal((await ec2.send(new DescribeImagesCommand({ Owners: ["self"] }))).Images?.length, 0, "the image was removed");
  });

  it("refuses sharing an image encrypted with the AWS-managed key, and making an encrypted image public", async () => {
    const shared = await runKiln(["validate", await template("share-default", "    encrypt_boot: true\n    ami_users: ['123456789013']\n")]);
    assert.equal(shared.code, 2);
    assert.match(shared.stderr, /builders\.0\.kms_key_id: is not set, and ami_users would share the encrypted image: AWS refuses to share an image encrypted with the AWS-managed key aws\/ebs/);
    const region = await runKiln(["validate", await template("share-region", "    encrypt_boot: true\n    kms_key_id: alias/mine\n    ami_users: ['123456789013']\n    ami_regions: [eu-west-1]\n    ami_region_kms_key_ids: {eu-west-1: ''}\n")]);
    assert.equal(region.code, 2);
    assert.match(region.stderr, /ami_region_kms_key_ids\.eu-west-1: is the AWS-managed key, and ami_users would share the encrypted copy in eu-west-1/);
    const open = await runKiln(["validate", await template("public-encrypted", "    encrypt_boot: true\n    ami_groups: [all]\n    public: true\n")]);
    assert.equal(open.code, 2);
    assert.match(open.stderr, /AWS does not allow encrypted images to be public/);
  });
});
