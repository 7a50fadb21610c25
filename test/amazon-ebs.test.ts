import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { CreateKeyPairCommand, CreateSecurityGroupCommand, CreateSubnetCommand, CreateVpcCommand, DescribeVolumesCommand, DescribeImageAttributeCommand, DescribeImagesCommand, DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand, DescribeSnapshotsCommand, EC2Client } from "@aws-sdk/client-ec2";
import { AddRoleToInstanceProfileCommand, CreateInstanceProfileCommand, CreateRoleCommand, IAMClient, ListInstanceProfilesCommand, ListRolesCommand } from "@aws-sdk/client-iam";
import { createServer } from "node:http";
import { FaultProxy } from "./helpers/fault-proxy.js";
import { instanceDisk } from "./helpers/instance-disk.js";
import { startSshd } from "./helpers/sshd.js";
import { runKiln, startKiln } from "./helpers/kiln-process.js";
import type { Moto } from "./helpers/moto.js";
import { startAwsStandIn, type AwsStandIn } from "./helpers/aws-stand-in.js";

const amazonLinux = "    source_ami_filter: {filters: {name: amzn2-ami-hvm-*-x86_64-gp2}, owners: [amazon], most_recent: true}\n    instance_type: t3.micro\n    ami_name: kiln-test-${{ uuid }}\n";
const readOnlyS3 = "    temporary_iam_instance_profile_policy_document: {Statement: [{Effect: Allow, Action: ['s3:GetObject'], Resource: '*'}]}\n";
const byKiln = [{ Name: "tag-key", Values: ["kiln:build-id"] }];

describe("kiln build with the amazon-ebs builder (against moto)", { timeout: 10 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-ebs-"));
  const state = join(dir, "state");
  let aws: AwsStandIn;
  let env: NodeJS.ProcessEnv;
  let moto: Moto;
  let ec2: EC2Client;
  let iam: IAMClient;
  // One proxy in front of moto for the suite: faults and counts are cleared before each test.
  let proxy: FaultProxy;
  after(async () => {
    await aws?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  // Instance type validation on, so a bad type fails RunInstances as AWS does.
  before(async () => {
    aws = await startAwsStandIn({ KILN_STATE_DIR: state }, { MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION: "true" });
    ({ env, moto, proxy, iam } = aws);
    ec2 = aws.ec2();
  });
  beforeEach(() => aws.reset());

  async function template(name: string, builder: string, endpoint = moto.endpoint): Promise<string> {
    const file = join(dir, `${name}.yaml`);
    const communicator = builder.includes("communicator:") ? "" : "    communicator: none\n";
    await writeFile(file, `name: ${name}\nbuilders:\n  - type: amazon-ebs\n    region: us-east-1\n    endpoint: ${endpoint}\n    wait: {delay_seconds: 0.1, timeout_seconds: 30}\n${communicator}${builder}`);
    return file;
  }

  const journals = async (): Promise<string[]> => (await readdir(join(state, "builds")).catch(() => [])).filter((f) => f.endsWith(".json"));

  async function leftovers(): Promise<string[]> {
    const instances = (await ec2.send(new DescribeInstancesCommand({ Filters: byKiln }))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    const keys = (await ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs ?? [];
    const groups = (await ec2.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups ?? [];
    const roles = (await iam.send(new ListRolesCommand({}))).Roles ?? [];
    const profiles = (await iam.send(new ListInstanceProfilesCommand({}))).InstanceProfiles ?? [];
    return [
      ...roles.filter((r) => r.RoleName?.startsWith("kiln-") === true).map((r) => `role ${r.RoleName}`),
      ...profiles.filter((p) => p.InstanceProfileName?.startsWith("kiln-") === true).map((p) => `instance profile ${p.InstanceProfileName}`),
      ...instances.filter((i) => i.State?.Name !== "terminated").map((i) => `instance ${i.InstanceId} ${i.State?.Name}`),
      ...keys.filter((k) => k.KeyName?.startsWith("kiln-") === true).map((k) => `key pair ${k.KeyName}`),
      ...groups.filter((g) => g.GroupName?.startsWith("kiln-") === true).map((g) => `security group ${g.GroupId}`),
    ];
  }

  it("builds an image from the newest matching source image, tags it and its snapshots, and removes everything temporary", async () => {
    // Shared with another account: the gate reads the image's snapshot back (the instance's disk, here a clean ext4).
    aws.ebs.instanceDisk = await instanceDisk(dir, "ebs");
    const file = await template("ebs", [
      "    source_ami_filter: {filters: {name: amzn2-ami-hvm-*-x86_64-gp2}, owners: [amazon], most_recent: true}",
      "    instance_type: t3.micro",
      "    ami_name: kiln-test-${{ timestamp }}",
      "    tags: {team: images}",
      "    snapshot_tags: {team: images}",
      "    run_tags: {purpose: kiln-test}",
      "    ami_users: [\"123456789013\"]",
      "    ami_regions: [us-west-2]",
      "",
    ].join("\n"));
    const run = await runKiln(["build", file, "--output-dir", join(dir, "out"), "--debug-keys", join(dir, "keys")], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const [keyFile] = await readdir(join(dir, "keys"));
    assert.equal((await stat(join(dir, "keys", keyFile ?? ""))).mode & 0o777, 0o600, "--debug-keys writes the key owner-only");
    assert.match(execFileSync("ssh-keygen", ["-y", "-f", join(dir, "keys", keyFile ?? "")], { encoding: "utf8" }), /^ssh-ed25519 /);
    assert.doesNotMatch(run.stdout + run.stderr, /PRIVATE KEY/, "and never prints it");
    // communicator none: the steps of a build that never reaches the instance, and no others.
    const steps = [...run.stdout.matchAll(/^==> \[[\d.]+s\] (\d+)\/(\d+) (.+)$/gm)].map((m) => `${m[1]}/${m[2]} ${m[3]}`);
    assert.deepEqual(steps, ["check AWS credentials", "find source image", "create temporary key pair", "create temporary security group", "prepare instance profile", "launch build instance", "provision", "stop build instance", "create image", "share and copy image", "write manifest"].map((s, i) => `${i + 1}/11 ${s}`));
    assert.match(run.stdout, /communicator none: the instance is not hardened or cleaned/);
    const [out] = await readdir(join(dir, "out"));
    const manifest = JSON.parse(await readFile(join(dir, "out", out ?? "", "manifest.json"), "utf8")) as { build: { id: string }; artifacts: { region: string; image: string; snapshots: string[] }[]; source: { image: string } };
    const artifact = manifest.artifacts[0];
    assert.equal(artifact?.region, "us-east-1");
    assert.match(manifest.source.image, /^ami-/);

    const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [artifact?.image ?? ""] }))).Images?.[0];
    assert.equal(image?.State, "available");
    const tags = Object.fromEntries((image?.Tags ?? []).map((t) => [t.Key, t.Value]));
    assert.equal(tags["kiln:build-id"], manifest.build.id);
    assert.equal(tags.team, "images");
    assert.ok((artifact?.snapshots.length ?? 0) > 0, "the image has snapshots");
    const snapshots = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: artifact?.snapshots }))).Snapshots ?? [];
    for (const s of snapshots) assert.ok(s.Tags?.some((t) => t.Key === "kiln:build-id" && t.Value === manifest.build.id), `snapshot ${s.SnapshotId} is tagged`);

    const instances = (await ec2.send(new DescribeInstancesCommand({ Filters: byKiln }))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    assert.equal(instances.length, 1);
    assert.equal(instances[0]?.State?.Name, "terminated");
    assert.equal(instances[0]?.MetadataOptions?.HttpTokens, "required", "IMDSv2 only");
    assert.ok(instances[0]?.Tags?.some((t) => t.Key === "purpose" && t.Value === "kiln-test"), "run_tags on the instance");
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(await journals(), [], "the journal is removed when nothing is left");

    // Shared with the account named, in both regions; copied and tagged in us-west-2.
    const copy = manifest.artifacts[1];
    assert.equal(copy?.region, "us-west-2");
    const west = aws.ec2("us-west-2");
    const copied = (await west.send(new DescribeImagesCommand({ ImageIds: [copy?.image ?? ""] }))).Images?.[0];
    assert.ok(copied?.Tags?.some((t) => t.Key === "kiln:build-id" && t.Value === manifest.build.id), "the copy is tagged");
    for (const [client, id] of [[ec2, artifact?.image], [west, copy?.image]] as const) {
      const permissions = await client.send(new DescribeImageAttributeCommand({ ImageId: id ?? "", Attribute: "launchPermission" }));
      assert.deepEqual(permissions.LaunchPermissions?.map((p) => p.UserId), ["123456789013"]);
    }
  });

  it("launches with a temporary role and instance profile of the template's policy, retried while it propagates, and removes both", async () => {
    // As EC2 answers while a new profile has not reached it yet, and while new resources are not yet visible.
    proxy.inject("RunInstances", { error: { status: 400, code: "InvalidParameterValue", message: "Value (kiln-x) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name" }, errorTimes: 2 });
    proxy.inject("DescribeInstances", { error: { status: 400, code: "InvalidInstanceID.NotFound", message: "The instance ID 'i-0' does not exist" }, errorTimes: 1 });
    proxy.inject("CreateTags", { error: { status: 400, code: "InvalidSnapshot.NotFound", message: "The snapshot 'snap-0' does not exist." }, errorTimes: 1 });
    const run = await runKiln(["build", await template("role", `${amazonLinux}${readOnlyS3}`, proxy.endpoint), "--output-dir", join(dir, "out-role")], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(proxy.calls.get("RunInstances"), 3, "the launch was retried until the profile was known");
    const launch = new URLSearchParams(proxy.bodies.get("RunInstances")?.at(-1) ?? "");
    assert.match(launch.get("IamInstanceProfile.Name") ?? "", /^kiln-role-\d{8}-\d{6}-[0-9a-f]+$/);
    const role = new URLSearchParams(proxy.bodies.get("CreateRole")?.[0] ?? "");
    assert.equal(role.get("Path"), "/kiln/");
    assert.deepEqual(JSON.parse(role.get("AssumeRolePolicyDocument") ?? "").Statement[0].Principal, { Service: "ec2.amazonaws.com" });
    const policy = JSON.parse(new URLSearchParams(proxy.bodies.get("PutRolePolicy")?.[0] ?? "").get("PolicyDocument") ?? "") as { Version: string; Statement: unknown[] };
    assert.deepEqual(policy, { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: ["s3:GetObject"], Resource: "*" }] });
    assert.match(run.stdout, /<== \[[\d.]+s\] delete instance profile kiln-role-/);
    assert.match(run.stdout, /<== \[[\d.]+s\] delete role kiln-role-/);
    assert.deepEqual(await leftovers(), []);

    // An existing profile is used as it is, and a missing one fails before anything exists.
    await moto.reset();
    await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: "builders" }));
    const existing = await runKiln(["build", await template("existing", `${amazonLinux}    iam_instance_profile: builders\n`, proxy.endpoint), "--output-dir", join(dir, "out-existing")], env);
    assert.equal(existing.code, 0, existing.stdout + existing.stderr);
    assert.equal(new URLSearchParams(proxy.bodies.get("RunInstances")?.at(-1) ?? "").get("IamInstanceProfile.Name"), "builders");
    assert.equal((await iam.send(new ListInstanceProfilesCommand({}))).InstanceProfiles?.length, 1, "the existing profile stays");
    const missing = await runKiln(["build", await template("missing", `${amazonLinux}    iam_instance_profile: nosuch\n`, proxy.endpoint), "--output-dir", join(dir, "out-missing")], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /looking up instance profile nosuch \(iam:GetInstanceProfile\): NoSuchEntity/);
    assert.deepEqual(await leftovers(), []);
  });

  it("on Ctrl-C during a create call, lets the call finish, records what it made, and removes it", async () => {
    proxy.inject("RunInstances", { delayMs: 3000 });
    const build = startKiln(["build", await template("interrupted", amazonLinux, proxy.endpoint), "--output-dir", join(dir, "out-interrupted")], env);
    while (!/\d+\/\d+ launch build instance/.test(build.stdout()) && build.child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    build.child.kill("SIGINT");
    const run = await build.done;
    assert.equal(run.code, 130, run.stdout + run.stderr);
    const instances = (await ec2.send(new DescribeInstancesCommand({ Filters: byKiln }))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    assert.equal(instances.length, 1, "the launch went through");
    assert.equal(instances[0]?.State?.Name, "terminated", "and its instance was removed");
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(await journals(), []);
  });

  it("adopts what a create call made when its answer was lost and the retry finds it, and retries launches with one token", async () => {
    for (const action of ["ImportKeyPair", "CreateSecurityGroup", "CreateRole", "CreateInstanceProfile"]) proxy.inject(action, { loseResponse: 1 });
    const run = await runKiln(["build", await template("lost", `${amazonLinux}${readOnlyS3}`, proxy.endpoint), "--output-dir", join(dir, "out-lost")], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const lost = ["ImportKeyPair", "CreateSecurityGroup", "CreateRole", "CreateInstanceProfile"];
    assert.deepEqual(lost.map((action) => [action, proxy.calls.get(action)]), lost.map((action) => [action, 2]), "each was retried once");
    assert.deepEqual(await leftovers(), [], "what the lost calls made was adopted and removed");

    // RunInstances carries a ClientToken, the same on the retry, so AWS makes one instance (moto ignores it).
    await moto.reset();
    proxy.inject("RunInstances", { loseResponse: 1 });
    const earlier = proxy.bodies.get("RunInstances")?.length ?? 0;
    const launched = await runKiln(["build", await template("lost-launch", amazonLinux, proxy.endpoint), "--output-dir", join(dir, "out-lost-launch")], env);
    assert.equal(launched.code, 0, launched.stdout + launched.stderr);
    const tokens = (proxy.bodies.get("RunInstances") ?? []).slice(earlier).map((b) => new URLSearchParams(b).get("ClientToken"));
    assert.equal(tokens.length, 2);
    assert.match(tokens[0] ?? "", /^launch-lost-launch-\d{8}-\d{6}-[0-9a-f]{6}$/);
    assert.equal(tokens[1], tokens[0]);
  });

  it("takes the region from AWS_REGION when the template names none, and says what to set when nothing does", async () => {
    const file = join(dir, "noregion.yaml");
    await writeFile(file, `name: noregion\nbuilders:\n  - type: amazon-ebs\n    endpoint: ${moto.endpoint}\n    communicator: none\n${amazonLinux}`);
    const run = await runKiln(["build", file, "--output-dir", join(dir, "out-noregion")], { ...env, AWS_REGION: "us-east-1" });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /region us-east-1/);
    const none = await runKiln(["build", file, "--output-dir", join(dir, "out-noregion-2")], { ...env, AWS_REGION: "", AWS_DEFAULT_REGION: "", AWS_CONFIG_FILE: join(dir, "no-config") });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^error: no region: the builder names none, and neither AWS_REGION nor the default profile sets one\n {2}\(set region in the builder/m);
  });

  it("rides out throttling (RequestLimitExceeded), 500s and slow answers on its calls", async () => {
    proxy.inject("DescribeImages", { throttle: 2 });
    proxy.inject("CreateSecurityGroup", { throttle: 1 });
    proxy.inject("RunInstances", { throttle: 1 });
    proxy.inject("ImportKeyPair", { error: { status: 500, code: "InternalError", message: "An internal error has occurred." }, errorTimes: 2 });
    proxy.inject("StopInstances", { error: { status: 503, code: "Unavailable", message: "The server is overloaded." }, errorTimes: 1 });
    proxy.inject("CreateImage", { delayMs: 1500 });
    const run = await runKiln(["build", await template("throttled", amazonLinux, proxy.endpoint), "--output-dir", join(dir, "out-throttled")], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.ok((proxy.calls.get("DescribeImages") ?? 0) >= 3, "the throttled calls were retried");
    assert.ok((proxy.calls.get("RunInstances") ?? 0) >= 2);
    assert.equal(proxy.calls.get("ImportKeyPair"), 3, "two 500s, then through");
    assert.equal(proxy.calls.get("StopInstances"), 2);
    assert.deepEqual(await leftovers(), []);
  });

  it("leaves a journal when killed with SIGKILL, and kiln cleanup --stale removes everything it names", async () => {
    // Held while stopping: by then the instance runs, with everything else around it.
    proxy.inject("StopInstances", { delayMs: 10_000 });
    const build = startKiln(["build", await template("killed", `${amazonLinux}${readOnlyS3}`, proxy.endpoint), "--output-dir", join(dir, "out-killed")], env);
    const deadline = Date.now() + 60_000;
    while (!/\d+\/\d+ stop build instance/.test(build.stdout()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    build.child.kill("SIGKILL");
    await build.done;
    const left = await leftovers();
    for (const kind of ["instance", "key pair", "security group", "role", "instance profile"]) assert.ok(left.some((l) => l.startsWith(kind)), `the killed build left its ${kind}: ${left.join(", ")}`);
    assert.equal((await journals()).length, 1, "and its journal");

    const cleanup = await runKiln(["cleanup", "--stale"], env);
    assert.equal(cleanup.code, 0, cleanup.stdout + cleanup.stderr);
    assert.match(cleanup.stdout, /removed security group sg-/);
    assert.match(cleanup.stdout, /removed instance i-[\s\S]*removed security group sg-/, "the instance first, then its group");
    assert.match(cleanup.stdout, /removed key pair kiln-/);
    assert.match(cleanup.stdout, /^5 removed, 0 could not be$/m);
    assert.match(cleanup.stdout, /removed instance profile kiln-killed-/);
    assert.match(cleanup.stdout, /removed role kiln-killed-/);
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(await journals(), []);
    const again = await runKiln(["cleanup", "--stale"], env);
    assert.match(again.stdout, /nothing to clean up/);
  });

  it("says what is wrong and what to do for rejected credentials, missing permissions and quotas", async () => {
    const cases = [
      { action: "GetCallerIdentity", status: 403, code: "InvalidClientTokenId", message: "The security token included in the request is invalid.", says: /checking the AWS credentials \(sts:GetCallerIdentity\): InvalidClientTokenId/, hint: /the access key is not valid/ },
      { action: "CreateSecurityGroup", status: 403, code: "UnauthorizedOperation", message: "You are not authorized to perform this operation.", says: /creating the temporary security group \(ec2:CreateSecurityGroup\): UnauthorizedOperation/, hint: /add the permission to their IAM policy/ },
      { action: "RunInstances", status: 400, code: "InstanceLimitExceeded", message: "You have requested more instances than your current instance limit allows.", says: /launching the build instance \(ec2:RunInstances\): InstanceLimitExceeded/, hint: /instance quota is reached/ },
    ];
    for (const c of cases) {
      await moto.reset();
      proxy.inject(c.action, { error: { status: c.status, code: c.code, message: c.message } });
      const run = await runKiln(["build", await template(`fails-${c.action}`, amazonLinux, proxy.endpoint), "--output-dir", join(dir, `out-${c.action}`)], env);
      proxy.inject(c.action, {});
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(run.stderr, c.says);
      assert.match(run.stderr, c.hint);
      assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
      assert.deepEqual(await leftovers(), [], `${c.action}: nothing left`);
    }
  });

  it("takes credentials from the profile --profile names, and says so clearly when it does not exist", async () => {
    const credentialsFile = join(dir, "aws-credentials");
    await writeFile(credentialsFile, "[builder]\naws_access_key_id = testing\naws_secret_access_key = testing\n", { mode: 0o600 });
    // No keys in the environment: only the profile can supply them.
    const profileEnv = { AWS_EC2_METADATA_DISABLED: "true", KILN_STATE_DIR: state, AWS_SHARED_CREDENTIALS_FILE: credentialsFile, AWS_CONFIG_FILE: join(dir, "no-config"), AWS_ENDPOINT_URL: proxy.endpoint };
    const file = await template("profile", amazonLinux);
    const run = await runKiln(["build", file, "--profile", "builder", "--output-dir", join(dir, "out-profile")], profileEnv);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const missing = await runKiln(["build", file, "--profile", "nosuch", "--output-dir", join(dir, "out-profile-2")], profileEnv);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /checking the AWS credentials of profile nosuch \(sts:GetCallerIdentity\): CredentialsProviderError/);
    assert.match(missing.stderr, /name an existing profile \(--profile, the template's profile, AWS_PROFILE\)/);
    assert.deepEqual(await leftovers(), []);
  });

  it("runs each provisioner on the builders its only/except name (shell-local, with no communicator)", async () => {
    const log = join(dir, "provisioned-by.log");
    const file = join(dir, "two-builders.yaml");
    const builder = (name: string) => `  - type: amazon-ebs\n    name: ${name}\n    region: us-east-1\n    endpoint: ${moto.endpoint}\n    wait: {delay_seconds: 0.1, timeout_seconds: 30}\n    communicator: none\n${amazonLinux.replace("ami_name: kiln-test-", `ami_name: kiln-${name}-`)}`;
    await writeFile(file, `name: two\nbuilders:\n${builder("east")}${builder("west")}provisioners:\n  - type: shell-local\n    inline: ['echo every >> ${log}']\n  - type: shell-local\n    only: [west]\n    inline: ['echo west-only >> ${log}']\n`);
    const run = await runKiln(["build", file, "--output-dir", join(dir, "out-two")], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual((await readFile(log, "utf8")).split("\n").filter(Boolean), ["every", "every", "west-only"]);
    assert.deepEqual(await leftovers(), []);
  });

  it("audits the image's snapshots, read back, before sharing it outside the account, and refuses a key the instance left in free blocks", async () => {
    // What the build instance's disk held: no filesystem, a private key in its free space (seed 004's risk).
    const key = join(dir, "left-behind");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "left-behind", "-f", key]);
    aws.ebs.instanceDisk = await instanceDisk(dir, "with-key", await readFile(key));
    const file = await template("gate", "    source_ami_filter: {filters: {name: amzn2-ami-hvm-*-x86_64-gp2}, owners: [amazon], most_recent: true}\n    instance_type: t3.micro\n    ami_name: kiln-gate\n    ami_users: [\"123456789013\"]\n");
    const run = await runKiln(["build", file, "--output-dir", join(dir, "gate-out")], env);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /auditing \/dev\/\w+ \(snap-\w+\) of ami-\w+, read back through the EBS direct APIs, before sharing it with account 123456789013/);
    assert.match(run.stderr, /image ami-\w+ was not shared with account 123456789013: its audit found \d+ findings? at or above high/);
    assert.doesNotMatch(run.stdout + run.stderr, /BEGIN OPENSSH PRIVATE KEY-----\s*\n\s*[A-Za-z0-9+/]{20}/, "the key itself is never printed");
    assert.equal(proxy.calls.get("ModifyImageAttribute") ?? 0, 0, "not shared");
    assert.deepEqual(await leftovers(), []);
    // The same instance disk without the key: the image is shared.
    aws.ebs.instanceDisk = await instanceDisk(dir, "clean");
    const clean = await runKiln(["build", await template("gate-clean", "    source_ami_filter: {filters: {name: amzn2-ami-hvm-*-x86_64-gp2}, owners: [amazon], most_recent: true}\n    instance_type: t3.micro\n    ami_name: kiln-gate-clean\n    ami_users: [\"123456789013\"]\n"), "--output-dir", join(dir, "gate-out")], env);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  });

  it("refuses to make an image public unless the template says public: true", async () => {
    const file = join(dir, "public.yaml");
    await writeFile(file, "name: public\nbuilders:\n  - type: amazon-ebs\n    region: us-east-1\n    source_ami: ami-0123456789abcdef0\n    instance_type: t3.micro\n    ami_name: kiln-test\n    communicator: none\n    ami_groups: [all]\n");
    const run = await runKiln(["validate", file]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /builders\.0\.ami_groups: would make the image public, and public is not set \(add public: true/);
  });

  it("rejects a region that is not one, before touching the cloud", async () => {
    const file = join(dir, "region.yaml");
    await writeFile(file, "name: region\nbuilders:\n  - type: amazon-ebs\n    region: us-east\n    source_ami: ami-0123456789abcdef0\n    instance_type: t3.micro\n    ami_name: kiln-test\n");
    const run = await runKiln(["validate", file]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /region\.yaml:4:13 builders\.0\.region: must look like an AWS region \(e\.g\. us-east-1\)/);
  });

  it("sweeps kiln-tagged temporary resources no journal names, older than asked, and leaves younger ones", async () => {
    const tagged = (buildId: string, type: "security-group" | "key-pair") => [{ ResourceType: type, Tags: [{ Key: "kiln:build-id", Value: buildId }] }];
    const old = "crashed-20200101-000000-abcdef";
    const young = `young-${new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15)}-abcdef`;
    await ec2.send(new CreateSecurityGroupCommand({ GroupName: `kiln-${old}`, Description: "left by a crash", TagSpecifications: tagged(old, "security-group") }));
    await ec2.send(new CreateKeyPairCommand({ KeyName: `kiln-${old}`, TagSpecifications: tagged(old, "key-pair") }));
    await ec2.send(new CreateKeyPairCommand({ KeyName: `kiln-${young}`, TagSpecifications: tagged(young, "key-pair") }));
    // IAM lists no tags: kiln's own are under its path, and their tags are read one by one.
    const trust = JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }] });
    await iam.send(new CreateRoleCommand({ RoleName: `kiln-${old}`, Path: "/kiln/", AssumeRolePolicyDocument: trust, Tags: [{ Key: "kiln:build-id", Value: old }] }));
    await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: `kiln-${old}`, Path: "/kiln/", Tags: [{ Key: "kiln:build-id", Value: old }] }));
    await iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: `kiln-${old}`, RoleName: `kiln-${old}` }));
    await iam.send(new CreateRoleCommand({ RoleName: "someone-elses", AssumeRolePolicyDocument: trust, Tags: [{ Key: "kiln:build-id", Value: old }] }));
    // The SDK's own endpoint variable: sweep has no template to name one.
    const sweepEnv = { ...env, AWS_ENDPOINT_URL: moto.endpoint };
    const dry = await runKiln(["sweep", "--region", "us-east-1", "--older-than", "6h", "--dry-run"], sweepEnv);
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /would remove key pair kiln-crashed-20200101-000000-abcdef/);
    assert.match(dry.stdout, /would remove instance profile kiln-crashed-20200101-000000-abcdef[^]*would remove role kiln-crashed-/, "a profile before its role");
    assert.equal((await leftovers()).length, 5, "a dry run removes nothing");
    const run = await runKiln(["sweep", "--region", "us-east-1", "--older-than", "6h"], sweepEnv);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /4 removed, 0 could not be/);
    assert.deepEqual((await iam.send(new ListRolesCommand({}))).Roles?.map((r) => r.RoleName), ["someone-elses"], "a role outside kiln's path is not kiln's");
    assert.deepEqual(await leftovers(), [`key pair kiln-${young}`]);
    const bad = await runKiln(["sweep", "--region", "us-east-1", "--older-than", "soon"], sweepEnv);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--older-than soon is not an age\n {2}\(write it like 6h, 90m or 2d\)/);
  });

  it("provisions over SSH (a real sshd stands in for the instance), its port open to this machine only", async () => {
    const sshDir = join(dir, "sshd");
    await mkdir(sshDir);
    // The instance: a real sshd whose root is a copy-on-write overlay of this machine's, so the
    // clean list it runs removes the instance's keys and histories, never this machine's.
    const sshd = await startSshd(sshDir, "", { isolatedRoot: true });
    const root = sshd.root ?? "";
    await mkdir(join(root, "root", ".ssh"), { recursive: true, mode: 0o700 });
    await writeFile(join(root, "root", ".bash_history"), "mysql -p'hunter2'\n");
    // This machine's "public address", as a check-IP service would say it.
    const checkIp = createServer((_req, res) => res.end("198.51.100.7\n"));
    await new Promise<void>((resolve) => checkIp.listen(0, "127.0.0.1", resolve));
    const checkIpPort = (checkIp.address() as { port: number }).port;
    const marker = "/etc/kiln-test-provisioned";
    await writeFile(join(dir, "motd"), "Built by kiln\n");
    try {
      const file = await template("ssh", [
        amazonLinux.trimEnd(),
        "    communicator: ssh",
        "    ssh_username: root",
        "    ssh_host: 127.0.0.1",
        `    ssh_port: ${sshd.port}`,
        "    ssh_timeout: 60",
        "    ssh_host_key_wait: 30",
        `    check_ip_url: http://127.0.0.1:${checkIpPort}/`,
        "provisioners:",
        "  - type: shell",
        "    env: {GREETING: hello}",
        `    inline: ['echo "$GREETING from $(id -un)" > ${marker}']`,
        "  - type: file",
        `    source: ${join(dir, "motd")}`,
        "    destination: /opt/kiln-test/motd",
        "    mode: \"0600\"",
        "",
      ].join("\n"), proxy.endpoint);
      const consoleAnswer = (fingerprint: string): string => {
        const printed = Buffer.from(`cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----\ncloud-init: 256 ${fingerprint} root@ip-10-0-0-1 (ED25519)\ncloud-init: -----END SSH HOST KEY FINGERPRINTS-----\n`).toString("base64");
        return `<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>p</requestId><instanceId>i-0</instanceId><timestamp>2026-01-01T00:00:00Z</timestamp><output>${printed}</output></GetConsoleOutputResponse>`;
      };
      /** The instance's sshd learns the build's key as a real instance would: from the key pair. */
      const authorizeWhenImported = async (build: ReturnType<typeof startKiln>, printLater?: string): Promise<void> => {
        for (let authorized = false, printed = printLater === undefined; (!authorized || !printed) && build.child.exitCode === null;) {
          const keys = authorized ? [] : (await ec2.send(new DescribeKeyPairsCommand({ IncludePublicKey: true }))).KeyPairs ?? [];
          const key = keys.find((k) => k.KeyName?.startsWith("kiln-ssh-") === true)?.PublicKey;
          if (key !== undefined) {
            await writeFile(join(root, "root", ".ssh", "authorized_keys"), `${key}\n`, { mode: 0o600 });
            authorized = true;
          }
          // The fingerprints reach the console only after kiln has looked a few times, as on EC2.
          if (!printed && (proxy.calls.get("GetConsoleOutput") ?? 0) >= 2 && printLater !== undefined) {
            proxy.inject("GetConsoleOutput", { answer: consoleAnswer(printLater) });
            printed = true;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      const build = startKiln(["build", file, "--output-dir", join(dir, "out-ssh")], env);
      await authorizeWhenImported(build, sshd.fingerprint);
      const run = await build.done;
      assert.equal(run.code, 0, run.stdout + run.stderr + sshd.log());
      assert.equal(await readFile(join(root, marker), "utf8"), "hello from root\n");
      assert.equal(await readFile(join(root, "opt/kiln-test/motd"), "utf8"), "Built by kiln\n");
      assert.equal((await stat(join(root, "opt/kiln-test/motd"))).mode & 0o777, 0o600);
      assert.match(run.stdout, /waiting up to 30s for the instance to print its host keys on the console/);
      assert.match(run.stdout, new RegExp(`host key ${sshd.fingerprint.replace(/[+/]/g, "\\$&")} matches the one the instance printed`));
      assert.ok((proxy.calls.get("GetConsoleOutput") ?? 0) >= 3, "the console was read until the fingerprints came");
      // The clean list ran on the instance, after the provisioners: the key kiln logged in with
      // and the history are gone from the instance, and this machine has neither touched.
      assert.match(run.stdout, /==> \[[\d.]+s\] 10\/14 clean build instance/);
      assert.match(run.stdout, /removed \/root\/\.ssh\/authorized_keys/);
      assert.match(run.stdout, /removed \/root\/\.bash_history/);
      for (const gone of ["root/.ssh/authorized_keys", "root/.bash_history"]) {
        await assert.rejects(stat(join(root, gone)), { code: "ENOENT" }, `${gone} is gone from the instance`);
      }
      await assert.rejects(stat(marker), { code: "ENOENT" }, "the provisioners ran on the instance, not on this machine");
      // Hardened over SSH too: the instance's sshd_config and its own sshd -t.
      assert.match(run.stdout, /sshd -t: the hardened configuration is valid/);
      assert.match(run.stdout, /sshd -T: key-only for root, kiln-check /);
      assert.match(await readFile(join(root, "etc/ssh/sshd_config"), "utf8"), /^# BEGIN kiln hardening[^\n]*\nPermitRootLogin prohibit-password\n/);
      assert.match(await readFile(join(root, "etc/shadow"), "utf8"), /^root:[!*]/m, "root's password locked on the instance");
      const ingress = decodeURIComponent(proxy.bodies.get("AuthorizeSecurityGroupIngress")?.[0] ?? "");
      assert.match(ingress, /CidrIp=198\.51\.100\.7\/32/);
      assert.match(ingress, new RegExp(`FromPort=${sshd.port}&`));
      assert.deepEqual(await leftovers(), []);

      // With the instance's fingerprints on its console, any other host key is refused.
      await moto.reset();
      proxy.inject("GetConsoleOutput", { answer: consoleAnswer("SHA256:AAAAnotthekeyofthishost0000000000000000000") });
      const refused = await runKiln(["build", file, "--output-dir", join(dir, "out-ssh-2")], env);
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /presented host key SHA256:\S+, not one the instance printed/);
      assert.deepEqual(await leftovers(), []);

      // When none come within ssh_host_key_wait, the first key seen is trusted, and kiln says so.
      await moto.reset();
      proxy.inject("GetConsoleOutput", {});
      const unpinned = join(dir, "ssh-unpinned.yaml");
      await writeFile(unpinned, (await readFile(file, "utf8")).replace("ssh_host_key_wait: 30", "ssh_host_key_wait: 0.5"));
      const trusting = startKiln(["build", unpinned, "--output-dir", join(dir, "out-ssh-3")], env);
      await authorizeWhenImported(trusting);
      const trusted = await trusting.done;
      assert.equal(trusted.code, 0, trusted.stdout + trusted.stderr);
      assert.match(trusted.stdout, /host key SHA256:\S+ accepted on first use \(no fingerprints were printed to pin\)/);
      assert.deepEqual(await leftovers(), []);
    } finally {
      checkIp.close();
      await sshd.stop();
    }
  });

  it("launches with the template's volumes, in a subnet of the VPC named, with a public address on the network interface", async () => {
    const vpc = (await ec2.send(new CreateVpcCommand({ CidrBlock: "10.42.0.0/16" }))).Vpc?.VpcId ?? "";
    const subnet = (await ec2.send(new CreateSubnetCommand({ VpcId: vpc, CidrBlock: "10.42.1.0/24", AvailabilityZone: "us-east-1a" }))).Subnet?.SubnetId ?? "";
    const file = await template("volumes", [
      amazonLinux.trimEnd(),
      "    associate_public_ip_address: true",
      "    launch_block_device_mappings: [{device_name: /dev/xvda, volume_size: 20, volume_type: gp3, encrypted: true}, {device_name: /dev/xvdf, volume_size: 5, delete_on_termination: false}]",
      `    vpc_id: ${vpc}`,
      "",
    ].join("\n"), proxy.endpoint);
    const run = await runKiln(["build", file, "--output-dir", join(dir, "out-volumes")], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const request = new URLSearchParams(proxy.bodies.get("RunInstances")?.[0] ?? "");
    assert.equal(request.get("BlockDeviceMapping.1.DeviceName"), "/dev/xvda");
    assert.equal(request.get("BlockDeviceMapping.1.Ebs.VolumeSize"), "20");
    assert.equal(request.get("BlockDeviceMapping.1.Ebs.VolumeType"), "gp3");
    assert.equal(request.get("BlockDeviceMapping.1.Ebs.Encrypted"), "true");
    assert.equal(request.get("NetworkInterface.1.AssociatePublicIpAddress"), "true");
    assert.match(request.get("NetworkInterface.1.SecurityGroupId.1") ?? "", /^sg-/, "the group goes with the interface");
    assert.equal(request.get("SecurityGroupId.1"), null, "and not beside it (EC2 refuses both)");
    assert.equal(request.get("NetworkInterface.1.SubnetId"), subnet, "the instance goes where its group is");
    const kept = (await ec2.send(new DescribeVolumesCommand({ Filters: byKiln }))).Volumes ?? [];
    assert.deepEqual(kept.filter((v) => v.State !== "deleted").map((v) => v.VolumeId), [], "the volume kept past termination is deleted too");
    assert.deepEqual(await leftovers(), []);
  });

  it("launches on spot, and falls back to on demand when there is no spot capacity and spot_fallback says so", async () => {
    // As AWS does while no spot capacity exists: every spot request fails (the SDK retries them).
    const noSpot = { error: { status: 500, code: "InsufficientInstanceCapacity", message: "There is no Spot capacity available that matches your request." }, match: "InstanceMarketOptions.MarketType=spot" };
    proxy.inject("RunInstances", noSpot);
    const run = await runKiln(["build", await template("spot", `${amazonLinux}    spot_price: auto\n    spot_fallback: true\n`, proxy.endpoint), "--output-dir", join(dir, "out-spot")], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const requests = (proxy.bodies.get("RunInstances") ?? []).map((b) => new URLSearchParams(b));
    const [first, last] = [requests[0], requests.at(-1)];
    assert.equal(first?.get("InstanceMarketOptions.MarketType"), "spot");
    assert.equal(first?.get("InstanceMarketOptions.SpotOptions.MaxPrice"), null, "auto: no maximum, so at most the on-demand price");
    assert.equal(last?.get("InstanceMarketOptions.MarketType"), null, "the fallback is on demand");
    assert.match(run.stdout, /no spot capacity .*launching on demand, as spot_fallback says/);
    assert.doesNotMatch(run.stdout, /skipped: spot instance/, "an on-demand fallback is stopped as usual");
    assert.deepEqual(await leftovers(), []);

    // With capacity, the spot instance is imaged running (it cannot be stopped; CreateImage reboots it).
    await moto.reset();
    proxy.inject("RunInstances", {});
    const onSpot = await runKiln(["build", await template("spot-ok", `${amazonLinux}    spot_price: auto\n`, proxy.endpoint), "--output-dir", join(dir, "out-spot-ok")], env);
    assert.equal(onSpot.code, 0, onSpot.stdout + onSpot.stderr);
    assert.match(onSpot.stdout, /skipped: spot instance i-\w+ cannot be stopped; CreateImage reboots it/);
    assert.equal(proxy.calls.get("StopInstances"), 1, "only the on-demand build stopped its instance");
    assert.equal(new URLSearchParams(proxy.bodies.get("CreateImage")?.at(-1) ?? "").get("NoReboot"), null, "CreateImage may reboot");
    assert.deepEqual(await leftovers(), []);

    await moto.reset();
    proxy.inject("RunInstances", noSpot);
    const strict = await runKiln(["build", await template("spot-strict", `${amazonLinux}    spot_price: "0.05"\n`, proxy.endpoint), "--output-dir", join(dir, "out-spot-strict")], env);
    assert.equal(strict.code, 1, "without spot_fallback the build fails");
    assert.match(strict.stderr, /launching the build instance on spot \(ec2:RunInstances\): InsufficientInstanceCapacity/);
    assert.deepEqual(await leftovers(), []);
  });

  it("fails clearly when no image matches the filter, having created nothing", async () => {
    const file = await template("nomatch", "    source_ami_filter: {filters: {name: no-such-image-*}, owners: [amazon]}\n    instance_type: t3.micro\n    ami_name: kiln-test\n");
    const run = await runKiln(["build", file, "--output-dir", join(dir, "out2")], env);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: no image matches source_ami_filter \(owners amazon; name=no-such-image-\*\) in us-east-1/m);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
    assert.deepEqual(await leftovers(), []);
  });

  it("refuses several matches without most_recent", async () => {
    const file = await template("ambiguous", "    source_ami_filter: {filters: {name: amzn2-ami-hvm-*}, owners: [amazon]}\n    instance_type: t3.micro\n    ami_name: kiln-test\n");
    const run = await runKiln(["build", file, "--output-dir", join(dir, "out3")], env);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /images match source_ami_filter/);
    assert.match(run.stderr, /set most_recent: true/);
  });

  it("undoes the key pair and security group when the launch fails", async () => {
    const file = await template("badtype", "    source_ami_filter: {filters: {name: amzn2-ami-hvm-*-x86_64-gp2}, owners: [amazon], most_recent: true}\n    instance_type: zz9.mega\n    ami_name: kiln-test\n");
    const run = await runKiln(["build", file, "--output-dir", join(dir, "out4")], env);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /^error: launching the build instance \(ec2:RunInstances\)/m);
    assert.match(run.stdout, /<== \[[\d.]+s\] delete security group sg-/);
    assert.match(run.stdout, /<== \[[\d.]+s\] delete key pair kiln-/);
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(await readdir(join(dir, "out4")).catch(() => []), [], "no output directory");
  });

  it("rejects provisioners on a builder without a communicator, before touching the cloud", async () => {
    const file = join(dir, "prov.yaml");
    await writeFile(file, `name: prov\nbuilders:\n  - type: amazon-ebs\n    region: us-east-1\n    source_ami: ami-0123456789abcdef0\n    instance_type: t3.micro\n    ami_name: kiln-test\n    communicator: none\nprovisioners:\n  - type: shell\n    inline: [echo hi]\n`);
    const run = await runKiln(["validate", file]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /builders\.0\.communicator: is none, so the provisioners cannot run on this builder/);
  });
});
