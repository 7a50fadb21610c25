import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { GetEbsDefaultKmsKeyIdCommand, GetEbsEncryptionByDefaultCommand } from "@aws-sdk/client-ec2";
import type { AwsClients } from "../../builders/amazon-ebs/aws-clients.js";
import { publishImageSettings } from "../../builders/amazon-ebs/image-settings.js";
import { ConfigError, formatProblem, KilnError } from "../../errors.js";
import { loadTemplate } from "../../template/load.js";
import type { AmazonPublishConfig } from "../../template/schema.js";
import { checkDefaultEncryption } from "./check-publish.js";

/** A template whose local builder publishes with these `publish.amazon` lines: its problems, or the parsed settings. */
async function load(publish: string): Promise<{ problems: string[]; amazon?: AmazonPublishConfig | undefined }> {
  const dir = await tempDirectory();
  const file = join(dir, "kiln.yaml");
  await writeFile(file, `name: demo
builders:
  - type: local
    base:
      mmdebstrap:
        suite: bookworm
        packages: [linux-image-cloud-amd64]
    publish:
      amazon:
${publish.split("\n").map((l) => `        ${l}`).join("\n")}
`);
  try {
    const loaded = await loadTemplate(file, { vars: [], varFiles: [], env: {} });
    const builder = loaded.template.builders[0];
    return { problems: [], amazon: builder?.type === "local" ? builder.publish?.amazon : undefined };
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return { problems: error.problems.map((p) => formatProblem(p).replace(`${file}:`, "")) };
  }
}

const key = (region: string): string => `arn:aws:kms:${region}:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

describe("publish.amazon against what AWS accepts (review of issue 15)", () => {
  it("refuses a root volume type RegisterImage or a launch refuses: io1/io2 without IOPS, st1/sc1 (not bootable)", async () => {
    for (const type of ["io1", "io2", "st1", "sc1"]) {
      const { problems } = await load(`name: my-image\nvolume_type: ${type}`);
      assert.equal(problems.length, 1, `${type}: ${problems.join("; ")}`);
      assert.match(problems[0] ?? "", /volume_type: must be one of "gp3", "gp2", "standard"/);
    }
    for (const type of ["gp3", "gp2", "standard"]) assert.deepEqual((await load(`name: my-image\nvolume_type: ${type}`)).problems, []);
  });

  it("refuses an encrypted image shared with users whose copy would be under the AWS-managed key (AWS cannot share it)", async () => {
    const { problems } = await load(`name: my-image\nregion: eu-west-1\nkms_key_id: ${key("eu-west-1")}\nusers: ["210987654321"]\nregions: [us-east-1]`);
    assert.equal(problems.length, 1, problems.join("; "));
    assert.match(problems[0] ?? "", /region_kms_key_ids.*us-east-1.*AWS-managed key/);
  });

  it("encrypts each copy with its region's key when given, and shares it", async () => {
    const { problems, amazon } = await load(`name: my-image\nregion: eu-west-1\nkms_key_id: ${key("eu-west-1")}\nusers: ["210987654321"]\nregions: [us-east-1, us-west-2]\nregion_kms_key_ids:\n  us-east-1: ${key("us-east-1")}\n  us-west-2: ${key("us-west-2")}`);
    assert.deepEqual(problems, []);
    assert.ok(amazon !== undefined);
    assert.deepEqual(publishImageSettings(amazon).ami_region_kms_key_ids, { "us-east-1": key("us-east-1"), "us-west-2": key("us-west-2") });
  });

  it("keeps the AWS-managed key for copies that are not shared, and refuses region keys that name no copy", async () => {
    const { problems, amazon } = await load(`name: my-image\nkms_key_id: ${key("eu-west-1")}\nregions: [us-east-1]`);
    assert.deepEqual(problems, []);
    assert.ok(amazon !== undefined);
    assert.deepEqual(publishImageSettings(amazon).ami_region_kms_key_ids, { "us-east-1": "" });
    const stray = await load(`name: my-image\nkms_key_id: ${key("eu-west-1")}\nregion_kms_key_ids:\n  us-east-1: ${key("us-east-1")}`);
    assert.equal(stray.problems.length, 1, stray.problems.join("; "));
    assert.match(stray.problems[0] ?? "", /us-east-1, which is not in regions/);
  });
});

describe("check AWS access: EBS encryption by default before an upload that leaves the account", () => {
  /** EC2 that answers the two reads as an account with these settings would (or refuses them). */
  const ec2 = (on: boolean | "denied", key = "alias/aws/ebs"): AwsClients => ({
    region: "eu-west-1",
    ec2: {
      send: (command: object) => {
        if (on === "denied") return Promise.reject(Object.assign(new Error("not allowed"), { name: "UnauthorizedOperation", $metadata: { httpStatusCode: 403 } }));
        if (command instanceof GetEbsEncryptionByDefaultCommand) return Promise.resolve({ EbsEncryptionByDefault: on });
        if (command instanceof GetEbsDefaultKmsKeyIdCommand) return Promise.resolve({ KmsKeyId: key });
        return Promise.reject(new Error(`unexpected ${command.constructor.name}`));
      },
    },
  }) as unknown as AwsClients;
  const signal = new AbortController().signal;
  const none = (): void => undefined;

  it("refuses a public image when encryption by default would encrypt it (AWS refuses encrypted public images)", async () => {
    await assert.rejects(checkDefaultEncryption(ec2(true), { users: [], public: true }, signal, none), (e: unknown) => e instanceof KilnError && e.code === "KILN_ENCRYPTION");
    await checkDefaultEncryption(ec2(false), { users: [], public: true }, signal, none);
  });

  it("refuses sharing with accounts under the AWS-managed default key; a customer-managed default key is fine", async () => {
    await assert.rejects(checkDefaultEncryption(ec2(true), { users: ["210987654321"], public: false }, signal, none), (e: unknown) => e instanceof KilnError && e.code === "KILN_ENCRYPTION");
    await checkDefaultEncryption(ec2(true, "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"), { users: ["210987654321"], public: false }, signal, none);
  });

  it("warns, and goes on, when the credentials may not read the setting", async () => {
    const warned: string[] = [];
    await checkDefaultEncryption(ec2("denied"), { users: [], public: true }, signal, (line) => warned.push(line));
    assert.equal(warned.length, 1);
    assert.match(warned[0] ?? "", /UnauthorizedOperation/);
  });
});
