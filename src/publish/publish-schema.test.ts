import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../test/helpers/temp.js";
import { ConfigError, formatProblem } from "../errors.js";
import { loadTemplate } from "../template/load.js";
import { bootModeOf, type AmazonPublishConfig } from "../template/schema.js";
import { publishImageSettings } from "../builders/amazon-ebs/image-settings.js";

async function load(publish: string, disk = ""): Promise<{ problems: string[]; amazon?: AmazonPublishConfig | undefined }> {
  const dir = await tempDirectory();
  const file = join(dir, "kiln.yaml");
  await writeFile(file, `name: demo
builders:
  - type: local
    base:
      mmdebstrap:
        suite: bookworm
        packages: [linux-image-cloud-amd64]
${disk}    publish:
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

describe("publish.amazon in a template", () => {
  it("takes a name and fills in the safe defaults: IMDSv2 required, ENA, gp3, not shared", async () => {
    const { problems, amazon } = await load("name: my-image\nregion: eu-west-1");
    assert.deepEqual(problems, []);
    assert.deepEqual(amazon, { name: "my-image", region: "eu-west-1", tags: {}, architecture: "x86_64", ena: true, imds_support: "v2.0", volume_type: "gp3", root_device_name: "/dev/xvda", users: [], groups: [], public: false, regions: [], max_concurrency: 32 });
  });

  it("refuses groups: [all] without public: true, and an encrypted image made public", async () => {
    const { problems } = await load("name: my-image\ngroups: [all]\nkms_key_id: arn:aws:kms:eu-west-1:111122223333:key/abc");
    assert.ok(problems.some((p) => /publish\.amazon\.groups: would make the image public, and public is not set/.test(p)), problems.join("\n"));
    assert.ok(problems.some((p) => /publish\.amazon\.kms_key_id: encrypts the image, and groups: \[all\] would make it public/.test(p)), problems.join("\n"));
  });

  it("refuses a boot mode the disk does not boot by, and NitroTPM without UEFI", async () => {
    const bios = await load("name: my-image\nboot_mode: uefi", "    disk:\n      partitions: gpt\n      boot: [bios]\n");
    assert.ok(bios.problems.some((p) => /publish\.amazon\.boot_mode: is uefi, and the disk does not boot by uefi/.test(p)), bios.problems.join("\n"));
    const tpm = await load("name: my-image\ntpm_support: v2.0");
    assert.ok(tpm.problems.some((p) => /publish\.amazon\.tpm_support: needs boot_mode: uefi/.test(p)), tpm.problems.join("\n"));
  });

  it("refuses a disk that does not boot, and a key that is not an ARN", async () => {
    const none = await load("name: my-image", "    disk:\n      partitions: gpt\n      boot: []\n");
    assert.ok(none.problems.some((p) => /publish\.amazon: makes an AMI, and the disk does not boot/.test(p)), none.problems.join("\n"));
    const key = await load("name: my-image\nkms_key_id: alias/mine");
    assert.ok(key.problems.some((p) => /kms_key_id: must be a KMS key ARN/.test(p)), key.problems.join("\n"));
  });

  it("boots as the disk does unless told: both firmwares make uefi-preferred", () => {
    assert.equal(bootModeOf({}, ["bios", "uefi"]), "uefi-preferred");
    assert.equal(bootModeOf({}, ["bios"]), "legacy-bios");
    assert.equal(bootModeOf({}, ["uefi"]), "uefi");
    assert.equal(bootModeOf({ boot_mode: "uefi" }, ["bios", "uefi"]), "uefi");
  });
});

const key = (region: string): string => `arn:aws:kms:${region}:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

describe("publish.amazon against what AWS accepts", () => {
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
