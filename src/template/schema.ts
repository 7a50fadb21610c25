import { z } from "zod";
import { didYouMean } from "./did-you-mean.js";
import { parseSize } from "../image/size.js";

/**
 * The kiln template, version 1. The same schema validates templates and emits the JSON
 * Schema editors use (`kiln schema`). Objects are strict: an unknown key is an error with a
 * suggestion, because a misspelled option silently ignored is how images ship unhardened.
 */

/** Marks an unknown-keys message so the problem formatter can split it per key. */
export const unknownKeysTag = "kiln:unknown-keys:";

function section<Shape extends z.ZodRawShape>(shape: Shape) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code !== "unrecognized_keys") return undefined;
      const perKey = issue.keys.map((key) => ({ key, suggestion: didYouMean(key, known) ?? null, known }));
      return unknownKeysTag + JSON.stringify(perKey);
    },
  });
}

const namePattern = /^[a-z0-9][a-z0-9._-]*$/i;
const imagePath = z.string().regex(/^\//, "must be an absolute path inside the image");

const sizePattern = /^\d+(\.\d+)?\s*([KMGT])(i?B)?$/i;
/** ext4 with 4 KiB blocks as kiln writes it: far past any machine image. */
const maxImageBytes = 16 * 1024 ** 4;
/** Room for ext4's own structures and a little content. */
const minImageBytes = 8 * 1024 ** 2;

/** raw; qcow2 (QEMU, KVM); vmdk streamOptimized (VMware, vSphere import); vhdx (Hyper-V); vhd fixed (Azure). */
export const imageFormat = z.enum(["raw", "qcow2", "vmdk", "vhdx", "vhd"]);

const mmdebstrapBase = section({
  // Values that reach mmdebstrap's command line (and the cache's file names): a word, never an option.
  suite: z.string().regex(/^[a-z][a-z0-9.+-]*$/, "must be a suite name like bookworm or jammy-updates (letters, digits, . + -, starting with a letter)").describe("Debian or Ubuntu suite, e.g. bookworm"),
  variant: z.enum(["extract", "custom", "essential", "apt", "required", "minbase", "buildd", "important", "debootstrap", "standard"]).default("minbase")
    .describe("mmdebstrap variant"),
  packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]*(=[A-Za-z0-9.+~:-]+)?$/, "must be a Debian package name, optionally =version (a version is letters, digits and . + ~ : -)")).default([])
    .describe("extra packages to install into the base"),
  mirror: z.string().regex(/^(https?|file):\/\//, "must be an http(s):// or file:// URL")
    .refine((url) => !/[\s"'\\]/.test(url), { message: "must not contain spaces, quotes or backslashes" })
    .refine((url) => !/^[a-z]+:\/\/[^/]*@/.test(url), { message: "must not carry credentials (they would be written into the image's sources.list)", params: { hint: "use apt's /etc/apt/auth.conf.d on this machine instead" } })
    .optional()
    .describe("mirror URL; default: the machine's apt sources for this suite"),
  components: z.array(z.string().regex(/^[a-z][a-z0-9-]*$/, "must be an archive component like main or non-free-firmware")).default(["main"]),
  architecture: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "must be a dpkg architecture like amd64 or arm64").optional().describe("dpkg architecture; default: the machine's"),
});

const base = section({
  mmdebstrap: mmdebstrapBase.optional().describe("build a base root filesystem with mmdebstrap (cached by its inputs)"),
  tarball: z.string().min(1).optional().describe("a root filesystem tarball (tar, tar.gz, tar.zst, tar.xz)"),
  directory: z.string().min(1).optional().describe("a root filesystem directory, copied"),
}).superRefine((value, ctx) => {
  const given = (["mmdebstrap", "tarball", "directory"] as const).filter((k) => value[k] !== undefined);
  if (given.length !== 1) {
    ctx.addIssue({
      code: "custom",
      message: given.length === 0 ? "needs a base root filesystem" : `gives ${given.join(" and ")}; only one base is allowed`,
      params: { hint: "set exactly one of mmdebstrap, tarball or directory" },
    });
  }
});

const image = section({
  size: z.union([
    z.literal("auto"),
    z.string().regex(sizePattern, "must be a size like 2G, 512M or 1.5GiB, or auto")
      // Only a size the pattern accepted is measured (zod runs every check): the pattern reports the rest.
      .refine((size) => !sizePattern.test(size) || parseSize(size) <= maxImageBytes, { message: "is beyond what kiln writes (at most 16T)", params: { hint: "give the size the image needs, like 8G; auto sizes it to its content" } })
      .refine((size) => !sizePattern.test(size) || parseSize(size) >= minImageBytes, { message: "is too small for a filesystem (at least 8M)", params: { hint: "give the size the image needs, like 2G; auto sizes it to its content" } }),
    z.number().int().min(minImageBytes, "is too small for a filesystem (at least 8M, in bytes)").max(maxImageBytes, "is beyond what kiln writes (at most 16T, in bytes)"),
  ]).default("auto").describe("filesystem size: auto (content plus headroom), a size like 2G, or bytes"),
  formats: z.array(imageFormat).min(1).default(["raw"]).describe("disk formats to write; raw is always written"),
  label: z.string().min(1).max(16).default("root").describe("filesystem label"),
});

/** A kernel package names a Debian/Ubuntu kernel image (linux-image-cloud-amd64, linux-image-6.1.0-28-amd64, linux-image-virtual). */
export const kernelPackagePattern = /^linux-image-[a-z0-9+.-]+(=.*)?$/;

const disk = section({
  partitions: z.enum(["gpt", "none"]).describe("gpt: a partitioned disk (BIOS boot, EFI system and root partitions); none: the bare ext4 filesystem"),
  boot: z.array(z.enum(["bios", "uefi"])).default(["bios", "uefi"])
    .describe("firmwares that boot the disk (GRUB, from this machine's grub-pc-bin and grub-efi-amd64-bin); [] for a partitioned disk nothing boots"),
  kernel_args: z.array(z.string().regex(/^[A-Za-z0-9_.,:=/+-]+$/, "must be one kernel argument (letters, digits and _ . , : = / + -)")).default([])
    .describe("more kernel command-line arguments, after kiln's root=PARTUUID=… ro console=tty0 console=ttyS0,115200n8"),
}).superRefine((value, ctx) => {
  if (value.partitions === "none" && value.boot.length > 0) {
    ctx.addIssue({ code: "custom", path: ["boot"], message: "needs partitions: gpt (a bare filesystem has no room for a boot loader)", params: { hint: "set partitions: gpt, or boot: []" } });
  }
});

const awsTags = z.record(z.string().min(1).max(128), z.string().max(256)).default({});

const awsRegion = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "must look like an AWS region (e.g. eu-west-1)");

/**
 * An AMI made from the local disk with no instance ever booted (issue 15): the raw disk is
 * uploaded block by block into a new EBS snapshot (EBS direct APIs), registered, copied, shared.
 */
const amazonPublish = section({
  region: awsRegion.optional().describe("where the image is made (default: AWS_REGION, else the profile's region)"),
  profile: z.string().min(1).optional().describe("the AWS profile whose credentials publish (default: the SDK's chain)"),
  name: z.string().regex(/^[A-Za-z0-9()[\]./'@_ -]{3,128}$/, "must be 3-128 letters, digits, spaces or ( ) [ ] . / ' @ _ -").describe("the image (AMI) name; it must be free in each region"),
  description: z.string().max(255).optional(),
  tags: awsTags.describe("tags on the image and its snapshot (kiln adds kiln:build-id)"),
  architecture: z.enum(["x86_64"]).default("x86_64").describe("the disk's architecture (kiln's bootable disks are amd64)"),
  boot_mode: z.enum(["legacy-bios", "uefi", "uefi-preferred"]).optional()
    .describe("how instances boot it (default: uefi-preferred when the disk boots by both, else the one it boots by)"),
  ena: z.boolean().default(true).describe("the image supports ENA networking (every current instance type needs it; Debian's cloud kernel has the driver)"),
  imds_support: z.union([z.literal("v2.0"), z.literal(false)]).default("v2.0").describe("v2.0: instances of the image require IMDSv2 (false: leave it to the launch)"),
  tpm_support: z.literal("v2.0").optional().describe("NitroTPM for instances of the image (needs boot_mode uefi)"),
  // RegisterImage refuses io1/io2 without Iops, and st1/sc1 cannot be boot volumes (EBS volume types): a root volume is one of these.
  volume_type: z.enum(["gp3", "gp2", "standard"]).default("gp3").describe("the root volume's type in the image's block device mapping"),
  root_device_name: z.string().regex(/^\/dev\/(xvd[a-z]|sd[a-z]1?)$/, "must be like /dev/xvda or /dev/sda1").default("/dev/xvda"),
  users: z.array(z.string().regex(/^\d{12}$/, "must be a 12-digit AWS account id")).default([]).describe("accounts that may launch the image (kiln audits it first)"),
  groups: z.array(z.literal("all", { error: "the only group is all (everyone)" })).default([]).describe("[all] makes the image public (needs public: true; kiln audits it first)"),
  public: z.boolean().default(false).describe("confirms that groups: [all] is meant: anyone may launch the image"),
  regions: z.array(awsRegion).default([]).describe("regions the image is copied to (each copy shared the same way)"),
  kms_key_id: z.string().min(1).optional().describe("encrypt the snapshot (and copies) with this KMS key ARN; an encrypted image cannot be public"),
  region_kms_key_ids: z.record(awsRegion, z.string().min(1)).optional()
    .describe("region → KMS key for that region's copy (default: that region's AWS-managed key aws/ebs, which cannot be shared with users)"),
  max_concurrency: z.number().int().min(1).max(64).default(32).describe("EBS direct calls in flight at most (throttling lowers it on the way)"),
}).superRefine((value, ctx) => {
  if (value.groups.includes("all") && !value.public) {
    ctx.addIssue({ code: "custom", path: ["groups"], message: "would make the image public, and public is not set", params: { hint: "add public: true if anyone may launch it (kiln audits first), or remove all" } });
  }
  if (value.public && !value.groups.includes("all")) {
    ctx.addIssue({ code: "custom", path: ["public"], message: "is true, and groups does not list all: the image would not be public", params: { hint: "add groups: [all], or remove public" } });
  }
  if (value.kms_key_id !== undefined && value.groups.includes("all")) {
    ctx.addIssue({ code: "custom", path: ["kms_key_id"], message: "encrypts the image, and groups: [all] would make it public: AWS does not allow encrypted images to be public", params: { hint: "drop kms_key_id, or share with accounts (users) instead" } });
  }
  if (value.kms_key_id !== undefined && !/^arn:aws[\w-]*:kms:/.test(value.kms_key_id)) {
    ctx.addIssue({ code: "custom", path: ["kms_key_id"], message: "must be a KMS key ARN (StartSnapshot takes only an ARN)", params: { hint: "like arn:aws:kms:eu-west-1:111122223333:key/…" } });
  }
  const regionKeys = value.region_kms_key_ids ?? {};
  for (const region of Object.keys(regionKeys)) {
    if (!value.regions.includes(region)) ctx.addIssue({ code: "custom", path: ["region_kms_key_ids", region], message: `names ${region}, which is not in regions`, params: { hint: "add the region to regions, or remove its key" } });
    else if (value.kms_key_id === undefined) ctx.addIssue({ code: "custom", path: ["region_kms_key_ids", region], message: "is set, and kms_key_id is not: copies are encrypted only when the image is", params: { hint: "set kms_key_id, or remove region_kms_key_ids" } });
  }
  // EC2 user guide, "Share an AMI with specific AWS accounts": an image encrypted with the AWS-managed key cannot be shared.
  if (value.kms_key_id !== undefined && value.users.length > 0) {
    for (const region of value.regions.filter((r) => regionKeys[r] === undefined && r !== value.region)) {
      ctx.addIssue({ code: "custom", path: ["region_kms_key_ids"], message: `names no key for ${region}, and users would share the encrypted copy there: it would be encrypted with ${region}'s AWS-managed key aws/ebs, and AWS refuses to share an image encrypted with it`, params: { hint: `give ${region} a customer-managed key (its ARN) in region_kms_key_ids, whose policy lets those accounts use it` } });
    }
  }
  if (value.tpm_support !== undefined && value.boot_mode !== "uefi") {
    ctx.addIssue({ code: "custom", path: ["tpm_support"], message: `needs boot_mode: uefi (NitroTPM works with UEFI boot only), and boot_mode is ${value.boot_mode ?? "not set"}`, params: { hint: "set boot_mode: uefi, or remove tpm_support" } });
  }
});

const localBuilder = section({
  type: z.literal("local"),
  name: z.string().regex(namePattern, "must be letters, digits, . _ -").optional(),
  base,
  image: image.default({ size: "auto", formats: ["raw"], label: "root" }),
  disk: disk.optional()
    .describe("default: a GPT disk that boots by BIOS and UEFI when the base lists a kernel package (linux-image-…), else the bare ext4 filesystem"),
  source_date_epoch: z.number().int().nonnegative().optional()
    .describe("file times are clamped to this (default: when the base was built)"),
  publish: section({ amazon: amazonPublish }).optional().describe("after the build (and its audit and test), publish the disk: amazon makes an AMI from it without booting a builder"),
}).superRefine((value, ctx) => {
  publishProblems(value, ctx);
  const packages = value.base.mmdebstrap?.packages;
  if (value.disk === undefined || value.disk.boot.length === 0 || packages === undefined) return;
  // Only an mmdebstrap base is known before the build; a tarball's kernel is looked for when it is unpacked.
  if (!packages.some((p) => kernelPackagePattern.test(p))) {
    ctx.addIssue({ code: "custom", path: ["base", "mmdebstrap", "packages"], message: `lists no kernel package, and disk.boot asks for a disk that boots (${value.disk.boot.join(", ")})`, params: { hint: "add linux-image-cloud-amd64 (or linux-image-amd64) to the packages, or set disk: { partitions: none, boot: [] }" } });
  }
  const architecture = value.base.mmdebstrap?.architecture;
  if (architecture !== undefined && architecture !== "amd64") {
    ctx.addIssue({ code: "custom", path: ["disk", "boot"], message: `boots amd64 disks only, and the base is ${architecture}`, params: { hint: "set disk: { partitions: gpt, boot: [] } for a partitioned disk without a boot loader" } });
  }
});

/** A publish the disk cannot carry: a boot mode it does not boot by, a disk that does not boot at all. */
function publishProblems(value: { base: { mmdebstrap?: { packages: string[]; architecture?: string | undefined } | undefined }; disk?: z.output<typeof disk> | undefined; publish?: { amazon: z.output<typeof amazonPublish> } | undefined }, ctx: z.RefinementCtx): void {
  const amazon = value.publish?.amazon;
  if (amazon === undefined) return;
  const boots = diskOf(value).boot;
  if (value.base.mmdebstrap !== undefined && boots.length === 0) {
    ctx.addIssue({ code: "custom", path: ["publish", "amazon"], message: "makes an AMI, and the disk does not boot (no kernel package, or disk.boot is [])", params: { hint: "list a kernel package (linux-image-cloud-amd64) in the base and leave disk.boot at [bios, uefi]" } });
    return;
  }
  const needs: Record<string, string[]> = { "legacy-bios": ["bios"], uefi: ["uefi"], "uefi-preferred": ["bios", "uefi"] };
  const missing = amazon.boot_mode === undefined ? [] : (needs[amazon.boot_mode] ?? []).filter((f) => value.base.mmdebstrap !== undefined && !boots.includes(f as "bios" | "uefi"));
  if (missing.length > 0) {
    ctx.addIssue({ code: "custom", path: ["publish", "amazon", "boot_mode"], message: `is ${amazon.boot_mode ?? ""}, and the disk does not boot by ${missing.join(" or ")} (disk.boot is [${boots.join(", ")}])`, params: { hint: "add the firmware to disk.boot, or choose the boot mode the disk has" } });
  }
}

/** The boot mode an AMI of the disk gets: the template's, else every firmware the disk boots by. */
export function bootModeOf(amazon: { boot_mode?: "legacy-bios" | "uefi" | "uefi-preferred" | undefined }, boots: readonly string[]): "legacy-bios" | "uefi" | "uefi-preferred" {
  if (amazon.boot_mode !== undefined) return amazon.boot_mode;
  if (boots.includes("bios") && boots.includes("uefi")) return "uefi-preferred";
  return boots.includes("uefi") ? "uefi" : "legacy-bios";
}

/** The disk a local builder writes: as the template says, else bootable when its base lists a kernel. */
export function diskOf(builder: { base: { mmdebstrap?: { packages: string[]; architecture?: string | undefined } | undefined }; disk?: z.output<typeof disk> | undefined }): z.output<typeof disk> {
  if (builder.disk !== undefined) return builder.disk;
  const base = builder.base.mmdebstrap;
  const kernel = base !== undefined && base.packages.some((p) => kernelPackagePattern.test(p)) && (base.architecture ?? "amd64") === "amd64";
  return kernel ? { partitions: "gpt", boot: ["bios", "uefi"], kernel_args: [] } : { partitions: "none", boot: [], kernel_args: [] };
}

const amazonEbsBuilder = section({
  type: z.literal("amazon-ebs"),
  name: z.string().regex(namePattern, "must be letters, digits, . _ -").optional(),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "must look like an AWS region (e.g. us-east-1)").optional()
    .describe("default: the SDK's (AWS_REGION, else the profile's region)"),
  profile: z.string().min(1).optional().describe("a profile of the shared AWS config; default: the SDK's default chain"),
  endpoint: z.string().regex(/^https?:\/\//, "must be an http(s):// URL").optional()
    .describe("an EC2-compatible endpoint (default: AWS, or AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL)"),
  source_ami: z.string().regex(/^ami-[0-9a-f]{8,17}$/, "must be an image id like ami-0123456789abcdef0").optional(),
  source_ami_filter: section({
    filters: z.record(z.string().min(1), z.union([z.string(), z.array(z.string()).min(1)])).default({})
      .describe("DescribeImages filters, e.g. name: debian-12-amd64-*"),
    owners: z.array(z.string().min(1)).min(1, "needs at least one owner (an account id, or amazon, aws-marketplace, self)")
      .describe("whose images may be used: required, so nobody else's image with a matching name is picked"),
    most_recent: z.boolean().default(false).describe("take the newest match; without it several matches are an error"),
  }).optional(),
  instance_type: z.string().regex(/^[a-z0-9-]+\.[a-z0-9-]+$/, "must be an instance type like t3.micro"),
  subnet_id: z.string().regex(/^subnet-[0-9a-f]+$/, "must be a subnet id like subnet-0123abcd").optional(),
  vpc_id: z.string().regex(/^vpc-[0-9a-f]+$/, "must be a VPC id like vpc-0123abcd").optional(),
  spot_price: z.union([z.literal("auto"), z.string().regex(/^\d+(\.\d+)?$/, "must be auto or a price in USD per hour, like \"0.05\"")]).optional()
    .describe("launch a spot instance: auto (at most the on-demand price) or a maximum price"),
  spot_fallback: z.boolean().default(false).describe("when no spot capacity is to be had, launch on demand instead"),
  associate_public_ip_address: z.boolean().optional().describe("give the build instance a public address (default: the subnet's setting)"),
  launch_block_device_mappings: z.array(section({
    device_name: z.string().regex(/^\/dev\/[a-z0-9]+$/, "must be a device like /dev/xvda"),
    volume_size: z.number().int().positive().optional().describe("GiB"),
    volume_type: z.enum(["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"]).optional(),
    iops: z.number().int().positive().optional(),
    throughput: z.number().int().positive().optional(),
    encrypted: z.boolean().optional(),
    kms_key_id: z.string().min(1).optional(),
    delete_on_termination: z.boolean().default(true),
  })).default([]).describe("volumes of the build instance (the root volume's size and type, say); the image keeps them"),
  iam_instance_profile: z.string().regex(/^[\w+=,.@-]{1,128}$/, "must be an instance profile name").optional()
    .describe("an existing instance profile for the build instance (its role's permissions)"),
  temporary_iam_instance_profile_policy_document: section({
    Version: z.literal("2012-10-17", { error: "must be \"2012-10-17\" (the IAM policy language version)" }).default("2012-10-17"),
    Id: z.string().optional(),
    Statement: z.array(z.record(z.string(), z.unknown())).min(1, "needs at least one statement"),
  }).optional().describe("a role + instance profile made for this build with this permission policy, removed after it"),
  platform: z.enum(["linux", "windows"]).default("linux").describe("windows: kiln writes the user data that brings up OpenSSH, and generalizes the image (sysprep)"),
  windows: section({
    version: z.enum(["auto", "2012", "2016", "2019", "2022", "2025"]).default("auto").describe("Windows Server version (auto: from the source image's name)"),
    launch_agent: z.enum(["auto", "ec2config", "ec2launch-v1", "ec2launch-v2"]).default("auto").describe("the source image's launch agent (auto: from its name and version)"),
    openssh_version: z.string().regex(/^v?\d+\.\d+\.\d+\.\d+p\d+-\w+$/, "must be a Win32-OpenSSH release like v9.5.0.0p1-Beta").default("v9.5.0.0p1-Beta")
      .describe("Server 2016 and earlier: the Win32-OpenSSH release to install"),
    openssh_sha256: z.string().regex(/^[0-9a-f]{64}$/i, "must be a SHA-256 in hex").optional()
      .describe("Server 2016 and earlier: the SHA-256 of that release's OpenSSH-Win64.zip (required there); a download that differs is refused"),
    generalize: z.boolean().default(true).describe("remove keys and histories, re-arm the first-boot key task, and sysprep before imaging"),
    get_password: z.boolean().default(false).describe("fetch and decrypt the Administrator password (GetPasswordData); shown only with --show-password"),
    password_timeout: z.number().positive().default(900).describe("seconds to wait for the password"),
  }).default({ version: "auto", launch_agent: "auto", openssh_version: "v9.5.0.0p1-Beta", generalize: true, get_password: false, password_timeout: 900 }),
  communicator: z.enum(["ssh", "none"]).default("ssh").describe("how kiln reaches the build instance to provision it"),
  ssh_username: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, "must be a user name like admin, ec2-user or Administrator").optional()
    .describe("the image's login user (admin on Debian, ec2-user on Amazon Linux, ubuntu on Ubuntu)"),
  ssh_port: z.number().int().min(1).max(65535).default(22),
  ssh_host: z.string().min(1).optional().describe("connect here instead of the instance's address"),
  ssh_interface: z.enum(["public_ip", "private_ip", "public_dns", "private_dns"]).optional()
    .describe("which address of the instance SSH connects to (default: public_ip when the instance gets one, else private_ip); with a private one the port is opened to this machine's private address"),
  ssh_timeout: z.number().positive().optional().describe("seconds to keep trying to connect (default 300; 1800 on Windows, whose first boot installs OpenSSH)"),
  ssh_host_key_wait: z.number().min(0).optional()
    .describe("seconds to wait for host key fingerprints on the console (pinned when they come; else the first key is trusted); default 120, on Windows ssh_timeout (they come with OpenSSH)"),
  temporary_security_group_source_cidrs: z.array(z.string().regex(/^(\d{1,3}(\.\d{1,3}){3}\/(3[0-2]|[12]?\d)|[0-9a-f:]+:[0-9a-f:]*\/(12[0-8]|1[01]\d|[1-9]?\d))$/i, "must be a CIDR like 203.0.113.7/32"))
    .min(1).optional().describe("who may reach the SSH port (default: this machine's public address /32)"),
  check_ip_url: z.string().regex(/^https?:\/\//, "must be an http(s):// URL").default("https://checkip.amazonaws.com")
    .describe("where kiln learns this machine's public address"),
  user_data: z.string().optional().describe("user data for the build instance"),
  user_data_file: z.string().min(1).optional().describe("a file of user data (relative to the template)"),
  metadata_options: section({
    http_tokens: z.enum(["required", "optional"]).default("required").describe("required = IMDSv2 only (kiln's default; a Packer template keeps Packer's optional)"),
    http_put_response_hop_limit: z.number().int().min(1).max(64).optional()
      .describe("how many network hops an IMDSv2 token travels (default: EC2's, which is 2 for an image that requires IMDSv2; a Packer template keeps Packer's 1)"),
  }).prefault({}),
  imds_support: z.literal("v2.0", { error: "must be \"v2.0\" (instances of the image then require IMDSv2)" }).optional()
    .describe("v2.0: instances launched from the image (and its copies) require IMDSv2; it cannot be undone on that image"),
  encrypt_boot: z.boolean().default(false).describe("an encrypted image: the build instance's root volume is encrypted, so are its snapshots"),
  kms_key_id: z.string().min(1).optional().describe("the KMS key for encrypt_boot (default: the AWS-managed key aws/ebs, which cannot be shared)"),
  ami_name: z.string().regex(/^[A-Za-z0-9()[\]./'@_ -]{3,128}$/, "must be 3-128 letters, digits, spaces or ( ) [ ] . / ' @ _ -"),
  ami_description: z.string().max(255).optional(),
  tags: awsTags.describe("tags on the image"),
  snapshot_tags: awsTags.describe("tags on the image's snapshots"),
  run_tags: awsTags.describe("tags on the build instance and its volumes"),
  ami_users: z.array(z.string().regex(/^\d{12}$/, "must be a 12-digit AWS account id")).default([]).describe("accounts that may launch the image"),
  ami_groups: z.array(z.literal("all", { error: "the only group is all (everyone)" })).default([]).describe("[all] makes the image public (needs public: true)"),
  public: z.boolean().default(false).describe("confirms that ami_groups: [all] is meant: anyone may launch the image"),
  ami_regions: z.array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "must look like an AWS region (e.g. eu-west-1)")).default([]).describe("regions to copy the image to"),
  ami_region_kms_key_ids: z.record(z.string(), z.string()).default({}).describe("region → KMS key: that region's copy is encrypted with it (\"\": that region's AWS-managed key)"),
  wait: section({
    delay_seconds: z.number().positive().default(5).describe("seconds between two looks at an instance or image"),
    timeout_seconds: z.number().positive().default(1800).describe("how long an instance may take to run or stop"),
    image_timeout_seconds: z.number().positive().default(4 * 3600).describe("how long an image (or a copy) may take to become available: large images take hours"),
  }).prefault({}).describe("how often and how long kiln polls instance and image states"),
  aws_polling: section({
    delay_seconds: z.number().positive().optional(),
    max_attempts: z.number().int().positive().optional(),
  }).optional().describe("Packer's spelling: every wait polls every delay_seconds, at most max_attempts times (over wait; AWS_POLL_DELAY_SECONDS and AWS_MAX_ATTEMPTS over both)"),
}).superRefine((value, ctx) => {
  if ((value.source_ami === undefined) === (value.source_ami_filter === undefined)) {
    ctx.addIssue({ code: "custom", message: "needs source_ami or source_ami_filter, not both", params: { hint: "give an image id, or a filter with owners" } });
  }
  if (value.communicator === "ssh" && value.ssh_username === undefined && value.platform !== "windows") {
    ctx.addIssue({ code: "custom", path: ["ssh_username"], message: "is needed with communicator ssh", params: { hint: "the image's login user: admin (Debian), ec2-user (Amazon Linux), ubuntu (Ubuntu); or communicator: none" } });
  }
  if (value.ami_groups.includes("all") && !value.public) {
    ctx.addIssue({ code: "custom", path: ["ami_groups"], message: "would make the image public, and public is not set", params: { hint: "add public: true if anyone may launch it (kiln audits first), or remove all" } });
  }
  encryptionProblems(value, ctx);
  if (value.communicator === "none" && value.ssh_interface !== undefined) {
    ctx.addIssue({ code: "custom", path: ["ssh_interface"], message: "is set, and communicator is none", params: { hint: "remove ssh_interface, or use communicator: ssh" } });
  }
  for (const region of Object.keys(value.ami_region_kms_key_ids)) {
    if (!value.ami_regions.includes(region)) ctx.addIssue({ code: "custom", path: ["ami_region_kms_key_ids", region], message: `names ${region}, which is not in ami_regions`, params: { hint: "add the region to ami_regions, or remove its key" } });
  }
  if (value.user_data !== undefined && value.user_data_file !== undefined) {
    ctx.addIssue({ code: "custom", message: "gives user_data and user_data_file; only one is allowed" });
  }
  if (value.iam_instance_profile !== undefined && value.temporary_iam_instance_profile_policy_document !== undefined) {
    ctx.addIssue({ code: "custom", message: "gives iam_instance_profile and temporary_iam_instance_profile_policy_document; only one is allowed", params: { hint: "use an existing profile, or let kiln make a temporary one from the policy" } });
  }
});

/** The AWS-managed EBS key, which AWS never lets another account use. */
const awsManagedKey = /^(alias\/aws\/ebs|arn:aws[\w-]*:kms:[\w-]+:\d{12}:alias\/aws\/ebs)$/;

/**
 * Encryption that AWS would refuse, or that would not do what it says: an image encrypted with
 * the AWS-managed key cannot be shared, and an encrypted image cannot be public.
 */
function encryptionProblems(value: { encrypt_boot: boolean; kms_key_id?: string | undefined; ami_users: string[]; ami_groups: string[]; ami_regions: string[]; ami_region_kms_key_ids: Record<string, string>; launch_block_device_mappings: { encrypted?: boolean | undefined; kms_key_id?: string | undefined }[] }, ctx: z.RefinementCtx): void {
  const defaultKey = (key: string | undefined): boolean => key === undefined || key.trim() === "" || awsManagedKey.test(key.trim());
  if (value.kms_key_id !== undefined && !value.encrypt_boot) {
    ctx.addIssue({ code: "custom", path: ["kms_key_id"], message: "is set, and encrypt_boot is not", params: { hint: "add encrypt_boot: true, or remove kms_key_id" } });
  }
  // An encrypted launch volume makes an encrypted snapshot of the image, encrypt_boot or not.
  const encryptedVolumes = value.launch_block_device_mappings.filter((m) => m.encrypted === true || m.kms_key_id !== undefined);
  const encrypted = value.encrypt_boot || encryptedVolumes.length > 0;
  if (!encrypted && Object.keys(value.ami_region_kms_key_ids).length === 0) return;
  if (encrypted && value.ami_users.length > 0 && !value.encrypt_boot && encryptedVolumes.some((m) => defaultKey(m.kms_key_id))) {
    ctx.addIssue({ code: "custom", path: ["launch_block_device_mappings"], message: "encrypts a volume with the AWS-managed key, and ami_users would share the image: AWS refuses to share an image encrypted with the AWS-managed key aws/ebs", params: { hint: "give that volume a customer-managed kms_key_id, or do not encrypt it" } });
  }
  if (value.ami_groups.includes("all") && (encrypted || Object.keys(value.ami_region_kms_key_ids).length > 0)) {
    ctx.addIssue({ code: "custom", path: ["ami_groups"], message: "would make an encrypted image public, and AWS does not allow encrypted images to be public", params: { hint: "share it with accounts (ami_users) and a customer-managed key instead, or drop encrypt_boot" } });
  }
  if (value.ami_users.length === 0) return;
  const why = "AWS refuses to share an image encrypted with the AWS-managed key aws/ebs: no other account may use that key";
  if (value.encrypt_boot && defaultKey(value.kms_key_id)) {
    ctx.addIssue({ code: "custom", path: ["kms_key_id"], message: `${value.kms_key_id === undefined ? "is not set" : `is ${value.kms_key_id}`}, and ami_users would share the encrypted image: ${why}`, params: { hint: "set kms_key_id to a customer-managed key whose policy lets those accounts use it" } });
  }
  for (const region of value.ami_regions) {
    const key = value.ami_region_kms_key_ids[region];
    if ((value.encrypt_boot || key !== undefined) && defaultKey(key)) {
      ctx.addIssue({ code: "custom", path: ["ami_region_kms_key_ids", region], message: `${key === undefined ? "is not set" : "is the AWS-managed key"}, and ami_users would share the encrypted copy in ${region}: ${why}`, params: { hint: `give ${region} a customer-managed key in ami_region_kms_key_ids` } });
    }
  }
}

const builderTypes = ["local", "amazon-ebs"] as const;
export const builder = z.discriminatedUnion("type", [localBuilder, amazonEbsBuilder], {
  error: (issue) => (issue.code === "invalid_union" ? unknownTypeMessage("builder", builderTypes, issue.input) : undefined),
});

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name");

/** `{{ .Path }}`, `{{ .Vars }}` and `{{ .EnvVarFile }}`, as Packer spells them; nothing else is filled in. */
export const executeCommandPlaceholder = /\{\{\s*\.(\w+)\s*\}\}/g;

/** Packer's only/except on a provisioner: the builders (by name, else type) it runs on. */
const builderFilter = {
  only: z.array(z.string().min(1)).min(1).optional().describe("run only on these builders (their name, else their type)"),
  except: z.array(z.string().min(1)).min(1).optional().describe("run on every builder but these"),
};

/** inline, script or scripts (exactly one): what shell, shell-local and powershell run. */
function scriptSources(what: { inline: string; script: string; scripts: string; hint: string }) {
  return {
    shape: {
      inline: z.array(z.string()).min(1).optional().describe(what.inline),
      script: z.string().min(1).optional().describe(what.script),
      scripts: z.array(z.string().min(1)).min(1).optional().describe(what.scripts),
    },
    check: (value: { inline?: unknown; script?: unknown; scripts?: unknown }, ctx: z.RefinementCtx): void => {
      if ([value.inline, value.script, value.scripts].filter((v) => v !== undefined).length !== 1) {
        ctx.addIssue({ code: "custom", message: "needs exactly one of inline, script or scripts", params: { hint: what.hint } });
      }
    },
  };
}

const shellSources = scriptSources({ inline: "commands, run in order by /bin/sh -e", script: "a script file to copy in and run", scripts: "script files, run in order", hint: "give a list of commands as inline, a file as script, or files as scripts" });
const shellProvisioner = section({
  type: z.literal("shell"),
  ...builderFilter,
  ...shellSources.shape,
  env: z.record(envName, z.string()).default({}).describe("environment variables for the commands"),
  execute_command: z.string().min(1).optional()
    .describe("how to run each script: {{ .Path }} is the script, {{ .Vars }} the env as NAME='value' words, {{ .EnvVarFile }} a private file of them to source (default: as root, with sudo -n when not root)"),
}).superRefine((value, ctx) => {
  shellSources.check(value, ctx);
  if (value.execute_command !== undefined) {
    const names = [...value.execute_command.matchAll(executeCommandPlaceholder)].map((m) => m[1]);
    const unknown = names.filter((n) => n !== "Path" && n !== "Vars" && n !== "EnvVarFile");
    if (unknown.length > 0) ctx.addIssue({ code: "custom", path: ["execute_command"], message: `has {{ .${unknown[0]} }}; only {{ .Path }}, {{ .Vars }} and {{ .EnvVarFile }} are filled in` });
    else if (!names.includes("Path")) ctx.addIssue({ code: "custom", path: ["execute_command"], message: "never runs the script: it has no {{ .Path }}", params: { hint: "e.g. sudo -n sh -c '{{ .Vars }} {{ .Path }}'" } });
  }
});

const fileProvisioner = section({
  type: z.literal("file"),
  ...builderFilter,
  direction: z.enum(["upload", "download"]).default("upload").describe("upload into the image, or download from it"),
  source: z.string().min(1).describe("upload: a file or directory on this machine (relative to the template); download: an absolute path in the image"),
  destination: z.string().min(1).describe("upload: where it goes in the image (ending in / copies into that directory); download: a path on this machine (relative to the template)"),
  mode: z.string().regex(/^0?[0-7]{3,4}$/, "must be an octal mode in quotes, like \"0644\"").optional(),
  owner: z.string().regex(/^[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?$|^\d+(:\d+)?$/, "must be user or user:group").optional(),
}).superRefine((value, ctx) => {
  const inImage = value.direction === "download" ? "source" : "destination";
  const path: unknown = value[inImage];
  if (typeof path === "string" && !path.startsWith("/")) ctx.addIssue({ code: "custom", path: [inImage], message: "must be an absolute path inside the image" });
  if (value.direction === "download" && (value.mode !== undefined || value.owner !== undefined)) {
    ctx.addIssue({ code: "custom", path: [value.mode !== undefined ? "mode" : "owner"], message: "applies to uploads only", params: { hint: "remove it, or set the mode on this machine after the build" } });
  }
  // Checked even when another key is wrong too, so every problem is reported at once.
}, { when: (payload) => typeof payload.value === "object" && payload.value !== null });

const localSources = scriptSources({ inline: "commands, run on this machine by /bin/sh -e", script: "a script file, run on this machine", scripts: "script files, run on this machine in order", hint: "give a list of commands as inline, a file as script, or files as scripts" });
const shellLocalProvisioner = section({
  type: z.literal("shell-local"),
  ...builderFilter,
  ...localSources.shape,
  env: z.record(envName, z.string()).default({}).describe("environment variables for the commands"),
}).superRefine(localSources.check);

const powershellSources = scriptSources({ inline: "PowerShell lines, run in order as one script", script: "a .ps1 file to run", scripts: ".ps1 files, run in order", hint: "give PowerShell lines as inline, a .ps1 file as script, or files as scripts" });
const powershellProvisioner = section({
  type: z.literal("powershell"),
  ...builderFilter,
  ...powershellSources.shape,
  env: z.record(envName, z.string()).default({}).describe("environment variables ($env:NAME) for the script"),
  valid_exit_codes: z.array(z.number().int()).min(1).default([0]).describe("exit codes that mean success"),
}).superRefine(powershellSources.check);

const windowsRestartProvisioner = section({
  type: z.literal("windows-restart"),
  ...builderFilter,
  restart_timeout: z.number().positive().default(600).describe("seconds for SSH to go away and come back"),
  restart_command: z.string().min(1).default("shutdown /r /f /t 5 /c \"kiln: windows-restart\"").describe("how to restart"),
  restart_check_command: z.string().min(1).optional().describe("PowerShell that must succeed once SSH is back (e.g. Get-Service sshd)"),
});

const provisionerTypes = ["shell", "file", "powershell", "windows-restart", "shell-local"] as const;
export const provisioner = z.discriminatedUnion("type", [shellProvisioner, fileProvisioner, powershellProvisioner, windowsRestartProvisioner, shellLocalProvisioner], {
  error: (issue) => (issue.code === "invalid_union" ? unknownTypeMessage("provisioner", provisionerTypes, issue.input) : undefined),
});

const variable = z.union([
  z.string(), z.number(), z.boolean(),
  section({
    default: z.union([z.string(), z.number(), z.boolean()]).optional(),
    description: z.string().optional(),
    sensitive: z.boolean().default(false).describe("never printed or logged"),
  }),
]);

const clean = section({
  enabled: z.boolean().default(true).describe("remove histories, keys, logs, caches before imaging"),
  paths: z.array(imagePath).default([])
    .describe("more paths (globs allowed) to remove"),
});

const userName = z.string().regex(/^[a-z_][a-z0-9_-]*$/, "must be a user name like admin");

export const hardenDefaults = {
  lock_passwords: true, keep_passwords: [] as string[], sshd: true, permit_root_login: "prohibit-password" as const,
  remove_host_keys: true, first_boot: "auto" as const, imds_v1_fallback: false,
};

const harden = z.union([
  z.literal(false),
  section({
    lock_passwords: z.boolean().default(true).describe("lock root's password and every other usable or empty one (seed 003)"),
    keep_passwords: z.array(userName).default([]).describe("users whose password stays usable"),
    sshd: z.boolean().default(true).describe("key-only sshd: PermitRootLogin, PasswordAuthentication no, KbdInteractiveAuthentication no, PermitEmptyPasswords no, UseDNS no"),
    permit_root_login: z.enum(["prohibit-password", "no"]).default("prohibit-password").describe("root by key only, or not at all"),
    remove_host_keys: z.boolean().default(true).describe("remove SSH host keys (each instance makes its own at first boot)"),
    default_user: userName.optional().describe("create this user with passwordless sudo and a locked password; the launch key goes to it"),
    first_boot: z.enum(["auto", "kiln", "cloud-init", "none"]).default("auto")
      .describe("who installs the launch key and new host keys at first boot: cloud-init when the image has it (auto), kiln's own service, or nobody"),
    imds_v1_fallback: z.boolean().default(false).describe("let kiln's first-boot service use IMDSv1 when no IMDSv2 token can be had"),
  }).superRefine((value, ctx) => {
    if (value.permit_root_login === "no" && value.default_user === undefined && value.first_boot !== "none") {
      ctx.addIssue({ code: "custom", path: ["permit_root_login"], message: "is no and there is no default_user, so the launch key would go to root, who may not log in", params: { hint: "set default_user (e.g. admin), or permit_root_login: prohibit-password" } });
    }
  }),
]).describe("harden the image for sharing: locked passwords, key-only sshd, first-boot key and host keys (false to skip)");

const severity = z.enum(["low", "medium", "high", "critical"]);

const audit = z.union([
  z.literal(false),
  section({
    fail_on: severity.default("high").describe("the build fails when a finding is this severe or worse"),
    baseline: z.string().min(1).optional().describe("a baseline file accepting known findings (relative to the template)"),
  }),
]).describe("audit the artifact for keys, credentials, histories and deleted data (false to skip)");

const vmTest = section({
  firmware: z.array(z.enum(["bios", "uefi"])).min(1).optional().describe("firmwares to boot by (default: each the disk boots by)"),
  user: z.string().regex(/^[a-z_][a-z0-9_-]*$/, "must be a user name").optional().describe("the account the test's key is for (default: harden.default_user, else root)"),
  commands: z.array(z.string().min(1)).default([]).describe("commands run over SSH as that user on the first boot; each must exit 0"),
  boots: z.union([z.literal(1), z.literal(2)]).default(2).describe("2: a second boot as another instance must change host keys and key"),
  timeout_seconds: z.number().int().min(30).default(600).describe("how long a boot may take to print its host keys (QEMU without KVM is slow)"),
}).describe("boot the disk in QEMU after the build, before it is published, and log in as its users will (kiln test)");

export const template = section({
  $schema: z.string().optional(),
  name: z.string().regex(namePattern, "must be letters, digits, . _ - (it names the output directory)"),
  description: z.string().optional(),
  variables: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a name like my_var"), variable).default({}),
  builders: z.array(builder).min(1, "needs at least one builder"),
  provisioners: z.array(provisioner).default([]),
  harden: harden.default(hardenDefaults),
  clean: clean.default({ enabled: true, paths: [] }),
  audit: audit.default({ fail_on: "high" }),
  test: vmTest.optional(),
  output: section({ directory: z.string().min(1).default("output") }).default({ directory: "output" }),
}).superRefine((value, ctx) => {
  // Provisioners run through a communicator; an amazon-ebs builder has none yet.
  value.builders.forEach((b, i) => {
    if (b.type === "amazon-ebs" && b.communicator === "none" && value.provisioners.some((p) => p.type !== "shell-local" && provisionerApplies(p, b))) {
      ctx.addIssue({ code: "custom", path: ["builders", i, "communicator"], message: "is none, so the provisioners cannot run on this builder", params: { hint: "remove the provisioners, or build with a local builder" } });
    }
  });
  // A test boots a local builder's disk: it must have one that boots.
  if (value.test !== undefined) {
    const locals = value.builders.map((b, i) => [b, i] as const).filter(([b]) => b.type === "local");
    if (locals.length === 0) ctx.addIssue({ code: "custom", path: ["test"], message: "boots local disks; no builder here is local", params: { hint: "remove test:, or add a local builder" } });
    for (const [b, i] of locals) {
      if (b.type !== "local") continue;
      const disk = diskOf(b);
      if (disk.boot.length === 0) ctx.addIssue({ code: "custom", path: ["test"], message: `needs a disk that boots, and builder ${i + 1} writes ${disk.partitions === "none" ? "a bare filesystem" : "a disk with no boot loader"}`, params: { hint: "list a kernel package (linux-image-cloud-amd64) in the base, or set disk: { partitions: gpt, boot: [bios, uefi] }" } });
      const missing = (value.test.firmware ?? []).filter((f) => !disk.boot.includes(f));
      if (missing.length > 0) ctx.addIssue({ code: "custom", path: ["test", "firmware"], message: `asks for ${missing.join(", ")}, which builder ${i + 1}'s disk does not boot by (disk.boot: ${disk.boot.join(", ") || "none"})`, params: { hint: "test by the firmwares the disk boots by" } });
    }
  }
  // only/except name builders that exist.
  const ids = value.builders.flatMap((b) => [b.name, b.type].filter((n): n is string => n !== undefined));
  value.provisioners.forEach((p, i) => {
    for (const key of ["only", "except"] as const) {
      (p[key] ?? []).forEach((name, j) => {
        if (ids.includes(name)) return;
        const guess = didYouMean(name, ids);
        ctx.addIssue({ code: "custom", path: ["provisioners", i, key, j], message: `names no builder "${name}"${guess === undefined ? "" : ` (did you mean "${guess}"?)`}`, params: { hint: `builders are named ${[...new Set(ids)].join(", ")}` } });
      });
    }
  });
  // PowerShell needs Windows; the shell provisioner and the file provisioner's tar need a POSIX
  // target: checked against the builders each provisioner runs on.
  value.provisioners.forEach((p, i) => {
    if (p.type === "shell-local") return; // runs on this machine, whatever the builder
    const targets = value.builders.filter((b) => provisionerApplies(p, b));
    const windows = targets.some((b) => b.type === "amazon-ebs" && b.platform === "windows");
    const posix = targets.some((b) => b.type !== "amazon-ebs" || b.platform !== "windows");
    const forWindows = p.type === "powershell" || p.type === "windows-restart";
    if (forWindows && posix) ctx.addIssue({ code: "custom", path: ["provisioners", i, "type"], message: `${p.type} runs on Windows only, and a builder here is not platform: windows`, params: { hint: "use a shell provisioner for Linux builders" } });
    if (!forWindows && windows) ctx.addIssue({ code: "custom", path: ["provisioners", i, "type"], message: `${p.type} needs a POSIX target, and a builder here is platform: windows`, params: { hint: "use a powershell provisioner on Windows" } });
  });
  // Builder names name their output directories and build ids, so those must differ: also
  // between a name and another builder's number ("2"), and by case (a case-blind disk).
  const labels = new Map<string, number>();
  value.builders.forEach((b, i) => {
    const label = builderLabel(value, i).toLowerCase();
    const other = labels.get(label);
    if (other !== undefined) {
      const message = b.name !== undefined && b.name === value.builders[other]?.name ? `another builder is already named "${b.name}"` : `gives this builder the output directory of builder ${other + 1} (${builderLabel(value, other)}-<time>)`;
      ctx.addIssue({ code: "custom", path: ["builders", i, ...(b.name === undefined ? [] : ["name"])], message, params: { hint: "give each builder its own name" } });
    }
    labels.set(label, i);
  });
});

export type Template = z.output<typeof template>;

/** What names a builder's output directory and build id: the template's name, with the builder's when there are several. */
export function builderLabel(template: Pick<Template, "name" | "builders">, index: number): string {
  return template.builders.length === 1 ? template.name : `${template.name}-${template.builders[index]?.name ?? String(index + 1)}`;
}

/** Whether a provisioner runs on a builder: its only/except name the builder (or its type). */
export function provisionerApplies(p: { only?: string[] | undefined; except?: string[] | undefined }, b: { name?: string | undefined; type: string }): boolean {
  const id = [b.name, b.type];
  if (p.only !== undefined && !p.only.some((n) => id.includes(n))) return false;
  return !(p.except ?? []).some((n) => id.includes(n));
}
export type HardenConfig = Exclude<z.output<typeof harden>, false>;
export type BuilderConfig = z.output<typeof builder>;
export type LocalBuilderConfig = z.output<typeof localBuilder>;
export type AmazonEbsBuilderConfig = z.output<typeof amazonEbsBuilder>;
export type ProvisionerConfig = z.output<typeof provisioner>;
export type ShellProvisionerConfig = z.output<typeof shellProvisioner>;
export type FileProvisionerConfig = z.output<typeof fileProvisioner>;
export type PowershellProvisionerConfig = z.output<typeof powershellProvisioner>;
export type WindowsRestartProvisionerConfig = z.output<typeof windowsRestartProvisioner>;
export type ShellLocalProvisionerConfig = z.output<typeof shellLocalProvisioner>;
export type ImageFormat = z.output<typeof imageFormat>;
export type DiskConfig = z.output<typeof disk>;
export type CleanConfig = z.output<typeof clean>;
export type AuditConfig = z.output<typeof audit>;
export type VmTestConfig = z.output<typeof vmTest>;
export type AmazonPublishConfig = z.output<typeof amazonPublish>;

function unknownTypeMessage(kind: string, types: readonly string[], input: unknown): string {
  const given = typeof input === "object" && input !== null ? (input as { type?: unknown }).type : undefined;
  if (given === undefined) return `needs a type (one of: ${types.join(", ")})`;
  const guess = typeof given === "string" ? didYouMean(given, types) : undefined;
  return `unknown ${kind} type ${JSON.stringify(given)}${guess === undefined ? "" : `; did you mean "${guess}"?`} (one of: ${types.join(", ")})`;
}

/** The JSON Schema of the template, for editors (`kiln schema > kiln.schema.json`). */
export function templateJsonSchema(): object {
  return {
    ...z.toJSONSchema(template, { io: "input", unrepresentable: "any" }),
    title: "kiln template",
  };
}
