import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand, EC2Client } from "@aws-sdk/client-ec2";
import { parse } from "yaml";
import { FaultProxy } from "./helpers/fault-proxy.js";
import { repoRoot, runKiln, startKiln } from "./helpers/kiln-process.js";
import { startMoto, type Moto } from "./helpers/moto.js";

// Seed 000's template, verbatim, beside its user-data and prepare-image scripts.
const fixtures = join(repoRoot, "test/fixtures/packer");
const seed = join(fixtures, "template.json");
const credentials = { AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_EC2_METADATA_DISABLED: "true" };
const noCredentials = { AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "", AWS_PROFILE: "", AWS_CONFIG_FILE: "/nonexistent", AWS_SHARED_CREDENTIALS_FILE: "/nonexistent", AWS_EC2_METADATA_DISABLED: "true" };

describe("Packer JSON templates (seed 000's, unmodified)", { timeout: 10 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-packer-"));
  after(() => rm(dir, { recursive: true, force: true }));

  it("validates, naming each option kiln does not support (an error with --strict)", async () => {
    const run = await runKiln(["validate", seed], { AWS_REGION: "us-east-1" });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /template\.json: valid \(1 builder, 2 provisioners\)/);
    assert.match(run.stderr, /^warning: template\.json:11:15 access_key: kiln takes credentials from the AWS SDK's default chain/m);
    assert.match(run.stderr, /^warning: template\.json:12:15 secret_key:/m);
    assert.match(run.stderr, /^warning: template\.json:34:28 ami_virtualization_type is not supported by kiln and is ignored$/m);
    // Credentials in the template other than the environment's would be silently unused: refused.
    const other = await runKiln(["validate", seed, "-var", "aws_access_key_id=AKIAIOSFODNN7EXAMPLE"], { AWS_REGION: "us-east-1", AWS_ACCESS_KEY_ID: "" });
    assert.equal(other.code, 2);
    assert.match(other.stderr, /template\.json:11:15 builders\.0\.access_key: access_key gives credentials other than the environment's[^\n]*\(export them as AWS_ACCESS_KEY_ID/);
    assert.ok(!other.stderr.includes("AKIAIOSFODNN7EXAMPLE"), "and does not print them");
    const strict = await runKiln(["validate", seed, "--strict"], { AWS_REGION: "us-east-1" });
    assert.equal(strict.code, 2);
    assert.match(strict.stderr, /template\.json:34:28 builders\.0\.ami_virtualization_type: ami_virtualization_type is not supported by kiln and is ignored \(--strict refuses/);
  });

  it("takes -var and -var-file as Packer spells them, and never prints a sensitive variable", async () => {
    const template = join(dir, "vars.json");
    await writeFile(template, JSON.stringify({
      variables: { image_name: "Base", token: null, region: "{{ env `KILN_TEST_REGION` }}" },
      "sensitive-variables": ["token"],
      builders: [{ type: "amazon-ebs", region: "{{user `region`}}", source_ami: "ami-0123456789abcdef0", instance_type: "t3.micro", ami_name: "{{user `image_name`}}-{{isotime `2006`}}", communicator: "none", run_tags: { Token: "{{user `token`}}", api_token: "not-a-secret" } }],
    }, null, 2));
    const missing = await runKiln(["validate", template], { KILN_TEST_REGION: "eu-west-1" });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /vars\.json:4:14 variables\.token: variable token is required and has no value \(pass -var token=…\)/);
    await writeFile(join(dir, "vars-file.json"), JSON.stringify({ image_name: "FromFile" }));
    const run = await runKiln(["inspect", template, "-var", "token=s3cr3t-t0ken-value", "-var-file", join(dir, "vars-file.json"), "--json"], { KILN_TEST_REGION: "eu-west-1" });
    assert.equal(run.code, 0, run.stderr);
    const inspected = JSON.parse(run.stdout) as { variables: Record<string, { value: string }>; builders: { region: string; ami_name: string }[] };
    assert.equal(inspected.builders[0]?.region, "eu-west-1", "a default from the environment");
    assert.equal(inspected.builders[0]?.ami_name, `FromFile-${new Date().getUTCFullYear()}`, "-var-file over the default");
    assert.equal(inspected.variables.token?.value, "[sensitive]");
    assert.ok(!(run.stdout + run.stderr).includes("s3cr3t-t0ken-value"), "the sensitive value appears nowhere");
    const tags = (JSON.parse(run.stdout) as { builders: { run_tags: Record<string, string> }[] }).builders[0]?.run_tags;
    assert.deepEqual(tags, { Token: "[redacted]", api_token: "not-a-secret" }, "valid JSON: the secret hidden, a secret-sounding key's plain value kept");
  });

  it("refuses winrm with user data that sets up only WinRM, before anything is created; takes \"\" as unset and spot_price 0 as on demand", async () => {
    const winrm = join(dir, "winrm.ps1");
    await writeFile(winrm, "<powershell>\n# this template does not use sshd\nwinrm quickconfig -q\nSet-Item WSMan:\\localhost\\Service\\Auth\\Basic $true\n</powershell>\n");
    const builder = { type: "amazon-ebs", region: "us-east-1", source_ami: "ami-0123456789abcdef0", instance_type: "t3.micro", ami_name: "win-{{timestamp}}", communicator: "winrm", winrm_username: "Administrator", user_data_file: winrm, kms_key_id: "", spot_price: "0" };
    const template = join(dir, "winrm.json");
    await writeFile(template, JSON.stringify({ builders: [builder] }, null, 2));
    const run = await runKiln(["validate", template]);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /builders\.0\.communicator: communicator winrm with user_data_file \S+winrm\.ps1, which does not set up OpenSSH: kiln connects to Windows over SSH only, so nothing would answer on port 22 \(remove user_data_file and kiln generates user data that installs OpenSSH/);
    await writeFile(winrm, "<powershell>\nAdd-WindowsCapability -Online -Name OpenSSH.Server~~~~0.0.1.0\nStart-Service sshd\n</powershell>\n");
    const ssh = await runKiln(["inspect", template, "--json"]);
    assert.equal(ssh.code, 0, ssh.stderr);
    const inspected = JSON.parse(ssh.stdout) as { builders: Record<string, unknown>[] };
    assert.equal(inspected.builders[0]?.kms_key_id, undefined, "\"\" is unset, as in Packer");
    assert.equal(inspected.builders[0]?.spot_price, undefined, "spot_price 0 is on demand, as in Packer");
    assert.deepEqual(inspected.builders[0]?.metadata_options, { http_tokens: "optional", http_put_response_hop_limit: 1 }, "Packer's defaults kept");
  });

  it("names an unknown function or variable at its line", async () => {
    const template = join(dir, "bad.json");
    await writeFile(template, `{
  "builders": [{
    "type": "amazon-ebs", "region": "us-east-1", "source_ami": "ami-0123456789abcdef0", "instance_type": "t3.micro",
    "ami_name": "base-{{isotim \`2006\`}}",
    "communicator": "none"
  }],
  "provisioners": [{"type": "shell-local", "inline": ["echo {{user \`nope\`}}"]}]
}
`);
    const run = await runKiln(["validate", template]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /bad\.json:4:17 builders\.0\.ami_name: unknown function "isotim" \(did you mean "isotime"\?\)/);
    assert.match(run.stderr, /bad\.json:7:55 provisioners\.0\.inline\.0: unknown variable "nope"/);
  });

  it("builds only the builders -only names, or all but those -except names", async () => {
    const template = join(dir, "two.json");
    const builder = (name: string) => ({ name, type: "amazon-ebs", region: "us-east-1", source_ami: "ami-0123456789abcdef0", instance_type: "t3.micro", ami_name: `kiln-${name}`, communicator: "none" });
    await writeFile(template, JSON.stringify({ builders: [builder("east"), builder("west")], provisioners: [{ type: "shell-local", inline: ["true"], only: ["west"] }, { type: "shell-local", inline: ["true"], except: ["west"] }] }));
    assert.match((await runKiln(["validate", template])).stdout, /valid \(2 builders, 2 provisioners/);
    assert.match((await runKiln(["validate", template, "-only=west"])).stdout, /valid \(1 builder, 1 provisioner\)/, "the except: [west] one is for no builder left");
    const except = await runKiln(["inspect", template, "-except", "west", "--json"]);
    const inspected = JSON.parse(except.stdout) as { builders: { name: string }[]; provisioners: { only?: string[]; except?: string[] }[] };
    assert.deepEqual(inspected.builders.map((b) => b.name), ["east"]);
    assert.deepEqual(inspected.provisioners.map((p) => [p.only, p.except]), [[undefined, undefined]], "only the provisioner meant for east, its filter naming no builder left out");
    // Both builders: each provisioner keeps the builders it is meant for (kiln runs it on those only).
    const both = JSON.parse((await runKiln(["inspect", template, "--json"])).stdout) as typeof inspected;
    assert.deepEqual(both.provisioners.map((p) => [p.only, p.except]), [[["west"], undefined], [undefined, ["west"]]]);
  });

  it("converts to kiln YAML that keeps the variables and validates", async () => {
    const run = await runKiln(["convert", seed], { AWS_REGION: "us-east-1" });
    assert.equal(run.code, 0, run.stderr);
    const converted = parse(run.stdout) as { variables: Record<string, unknown>; builders: Record<string, unknown>[]; provisioners: { type: string }[] };
    const builder = converted.builders[0] ?? {};
    assert.equal(builder.ami_name, "${{ var.ami_name_prefix }}-${{ isotime \"2006-01-02-1504\" }}");
    assert.deepEqual(builder.tags, { Name: "${{ var.image_name }}", OS: "Windows-2016" });
    assert.equal(builder.platform, "windows");
    assert.deepEqual(builder.windows, { generalize: false }, "the template sysprep's itself, as Packer templates must");
    assert.equal(builder.spot_price, "auto");
    assert.equal(builder.ssh_timeout, 300);
    assert.deepEqual(converted.provisioners.map((p) => p.type), ["powershell", "powershell"]);
    assert.equal(converted.variables.image_name, "Windows Image");
    const file = join(fixtures, ".converted.generated.yaml");
    await writeFile(file, run.stdout);
    const validated = await runKiln(["validate", file], { AWS_REGION: "us-east-1" });
    assert.equal(validated.code, 0, validated.stderr);
    // A variable with no default stays one, and a secret's environment is read, never written out.
    const required = join(dir, "required.json");
    await writeFile(required, JSON.stringify({ variables: { owner: null, key: "{{ env `AWS_SECRET_ACCESS_KEY` }}" }, builders: [{ type: "amazon-ebs", region: "us-east-1", source_ami: "ami-0123456789abcdef0", instance_type: "t3.micro", ami_name: "kiln-{{user `owner`}}", communicator: "none", run_tags: { K: "{{user `key`}}" } }] }));
    const convertedRequired = await runKiln(["convert", required], { AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY" });
    assert.equal(convertedRequired.code, 0, convertedRequired.stderr);
    assert.match(convertedRequired.stdout, /owner:\n\s+description: required/);
    assert.match(convertedRequired.stdout, /K: \$\{\{ env\.AWS_SECRET_ACCESS_KEY \}\}/);
    assert.ok(!convertedRequired.stdout.includes("wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY"));
  });

  describe("against moto", () => {
    let moto: Moto;
    let proxy: FaultProxy;
    let checkIp: ReturnType<typeof createServer>;
    let env: NodeJS.ProcessEnv;
    before(async () => {
      moto = await startMoto();
      proxy = new FaultProxy(moto.endpoint);
      await proxy.start();
      checkIp = createServer((_req, res) => res.end("198.51.100.7\n"));
      await new Promise<void>((resolve) => checkIp.listen(0, "127.0.0.1", resolve));
      env = { ...credentials, AWS_REGION: "us-east-2", AWS_ENDPOINT_URL: proxy.endpoint, KILN_STATE_DIR: join(dir, "state"), KILN_CHECK_IP_URL: `http://127.0.0.1:${(checkIp.address() as { port: number }).port}/` };
    });
    after(async () => {
      checkIp?.close();
      await proxy?.stop();
      await moto?.stop();
    });

    it("plans: the resolved source image and every step's calls and resources, creating nothing", async () => {
      const run = await runKiln(["plan", seed, "--json"], env);
      assert.equal(run.code, 0, run.stderr);
      const plan = JSON.parse(run.stdout) as { plans: { lookups: string[]; steps: { step: string; calls: string[]; creates: { type: string; tags?: Record<string, string> }[] }[]; remains: string[] }[] };
      const [only] = plan.plans;
      assert.match(only?.lookups.join("\n") ?? "", /sts:GetCallerIdentity: account 123456789012/);
      assert.match(only?.lookups.join("\n") ?? "", /ec2:DescribeImages: ami-\w+ \(Windows_Server-2016-English-Full-Base/);
      const step = (name: string) => only?.steps.find((s) => s.step === name);
      assert.deepEqual(step("create temporary key pair")?.calls, ["ec2:ImportKeyPair"]);
      assert.match((step("launch build instance") as { note?: string } | undefined)?.note ?? "", /metadata service: IMDSv1 and IMDSv2 \(http_tokens optional\)/, "the plan shows the IMDS choice");
      assert.match(only?.lookups.join("\n") ?? "", /ec2:DescribeImages \(name\): "windows-base-[\d-]+" is free in every region/);
      assert.ok(step("launch build instance")?.creates[0]?.tags?.["kiln:build-id"] !== undefined);
      assert.equal(step("create image")?.creates[0]?.tags?.OS, "Windows-2016");
      assert.match(only?.remains[0] ?? "", /^image windows-base-\d{4}-\d{2}-\d{2}-\d{4} in us-east-2/);
      assert.deepEqual([...proxy.calls.keys()].filter((a) => !a.startsWith("Describe") && a !== "GetCallerIdentity"), [], "only read-only calls");
      const uncredentialed = await runKiln(["plan", seed], { ...noCredentials, AWS_REGION: "us-east-2", AWS_ENDPOINT_URL: proxy.endpoint });
      assert.equal(uncredentialed.code, 0, uncredentialed.stderr);
      assert.match(uncredentialed.stdout, /lookups: skipped \(.*\): no credentials or no access; the plan shows the template's values/);
      const before = proxy.calls.get("GetCallerIdentity") ?? 0;
      const offline = await runKiln(["plan", seed, "--offline"], env);
      assert.match(offline.stdout, /lookups: skipped \(--offline\)/);
      assert.equal(proxy.calls.get("GetCallerIdentity") ?? 0, before, "--offline calls nothing");
    });

    it("runs the build through launch: the template's user data, a spot request, the key pair, the group, the tags", async () => {
      const build = startKiln(["build", seed, "--output-dir", join(dir, "out")], env);
      while (!/\d+\/\d+ connect over SSH/.test(build.stdout()) && build.child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
      build.child.kill("SIGINT"); // there is no Windows here to connect to
      const run = await build.done;
      assert.equal(run.code, 130, run.stdout + run.stderr);
      const launch = new URLSearchParams(proxy.bodies.get("RunInstances")?.at(-1) ?? "");
      assert.equal(Buffer.from(launch.get("UserData") ?? "", "base64").toString("utf8"), await readFile(join(fixtures, "files/configure-source-ssh.ps1"), "utf8"));
      assert.equal(launch.get("InstanceMarketOptions.MarketType"), "spot");
      assert.equal(launch.get("InstanceType"), "t2.medium");
      // Its user data reads the launch key over IMDSv1: Packer's http_tokens optional is kept, and kiln says why and how to move on.
      assert.equal(launch.get("MetadataOptions.HttpTokens"), "optional");
      assert.equal(launch.get("MetadataOptions.HttpPutResponseHopLimit"), "1", "and Packer's hop limit");
      assert.match(run.stderr, /^warning: template\.json: builders\.0: user data reads the instance metadata without an IMDSv2 token \(IMDSv1\) at files\/configure-source-ssh\.ps1:74; it works because http_tokens is optional/m);
      assert.equal(launch.get("NetworkInterface.1.AssociatePublicIpAddress"), "true");
      const imported = Buffer.from(new URLSearchParams(proxy.bodies.get("ImportKeyPair")?.at(-1) ?? "").get("PublicKeyMaterial") ?? "", "base64").toString("utf8");
      assert.match(imported, /^ssh-rsa /);
      const ingress = new URLSearchParams(proxy.bodies.get("AuthorizeSecurityGroupIngress")?.at(-1) ?? "");
      assert.equal(ingress.get("IpPermissions.1.FromPort"), "22");
      assert.equal(ingress.get("IpPermissions.1.IpRanges.1.CidrIp"), "198.51.100.7/32", "this machine only, not 0.0.0.0/0 as the seed's Packer did");
      assert.equal(launch.get("TagSpecification.1.Tag.2.Key"), "kiln:build-id");
      const ec2 = new EC2Client({ region: "us-east-2", endpoint: moto.endpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
      const instances = (await ec2.send(new DescribeInstancesCommand({}))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
      assert.deepEqual(instances.map((i) => i.State?.Name), ["terminated"], "cancelled, and cleaned up");
      assert.deepEqual(((await ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs ?? []).filter((k) => k.KeyName?.startsWith("kiln-")), []);
      assert.deepEqual(((await ec2.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups ?? []).filter((g) => g.GroupName?.startsWith("kiln-")), []);
    });
  });
});
