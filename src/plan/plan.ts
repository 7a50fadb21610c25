import { createHash } from "node:crypto";
import { DescribeImagesCommand } from "@aws-sdk/client-ec2";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { awsClients, buildRegion } from "../builders/amazon-ebs/aws-clients.js";
import { amazonEbsBuilder } from "../builders/amazon-ebs/amazon-ebs-builder.js";
import { temporaryIamName } from "../builders/amazon-ebs/steps/instance-profile.js";
import { kilnTags } from "../builders/amazon-ebs/tags.js";
import { localBuilder } from "../builders/local/local-builder.js";
import type { LoadedTemplate } from "../template/load.js";
import { builderLabel, type AmazonEbsBuilderConfig, type BuilderConfig } from "../template/schema.js";
import { windowsTarget } from "../windows/launch-agent.js";
import { newest, sourceImageQuery } from "../builders/amazon-ebs/steps/source-image.js";
import { openSshHashMissing, templateUserData } from "../builders/amazon-ebs/user-data.js";

export interface PlannedResource {
  type: string;
  name: string;
  tags?: Record<string, string>;
}

export interface PlannedStep {
  step: string;
  /** The cloud calls it makes (read-only ones marked), or what it does on this machine. */
  calls: string[];
  creates: PlannedResource[];
  note?: string;
}

export interface BuilderPlan {
  builder: string;
  type: string;
  steps: PlannedStep[];
  /** What cleanup removes, in its order. */
  cleanup: string[];
  /** What the build leaves: its artifacts. */
  remains: string[];
  /** Read-only calls made for this plan, or why they were skipped. */
  lookups: string[];
}

const asTags = (tags: { Key: string; Value: string }[]): Record<string, string> => Object.fromEntries(tags.map((t) => [t.Key, t.Value]));

/**
 * What `kiln build` would do, without creating anything: for each builder every step in
 * order, the calls it makes, what it creates (with its tags), what cleanup removes and what
 * remains. With credentials, the read-only lookups (caller identity, source image) are made.
 */
export async function planTemplate(loaded: LoadedTemplate, probe: boolean): Promise<BuilderPlan[]> {
  const plans: BuilderPlan[] = [];
  for (const [i, builder] of loaded.template.builders.entries()) {
    const label = builderLabel(loaded.template, i);
    plans.push(builder.type === "amazon-ebs" ? await planAmazonEbs(loaded, builder, label, probe) : planLocal(loaded, builder, label));
  }
  return plans;
}

function planLocal(loaded: LoadedTemplate, _builder: Extract<BuilderConfig, { type: "local" }>, label: string): BuilderPlan {
  const steps = localBuilder.stepNames.map((step) => ({ step, calls: [], creates: [] as PlannedResource[] }));
  const formats = _builder.image.formats.join(", ");
  return {
    builder: label, type: "local", steps, lookups: ["none: the local builder calls no cloud"],
    cleanup: ["the work directory (the unpacked tree)"],
    remains: [`output/${label}-<time>/disk.raw (${formats}), manifest.json, audit.json`],
  };
}

async function planAmazonEbs(loaded: LoadedTemplate, builder: AmazonEbsBuilderConfig, label: string, probe: boolean): Promise<BuilderPlan> {
  const buildId = `${label}-<time>-<random>`;
  const tags = (extra: Record<string, string> = {}): Record<string, string> => asTags(kilnTags(buildId, "<version>", extra));
  const lookups: string[] = [];
  let region = builder.region ?? "(from AWS_REGION or the profile)";
  let source = builder.source_ami ?? `the newest image matching ${JSON.stringify(builder.source_ami_filter?.filters ?? {})} owned by ${(builder.source_ami_filter?.owners ?? []).join(", ")}`;
  let windows = builder.platform === "windows" ? "Windows (version and launch agent from the source image's name)" : undefined;
  if (probe) {
    try {
      region = await buildRegion(builder);
      const clients = awsClients({ ...builder, region });
      const signal = AbortSignal.timeout(20_000);
      const identity = await clients.sts.send(new GetCallerIdentityCommand({}), { abortSignal: signal });
      lookups.push(`sts:GetCallerIdentity: account ${identity.Account ?? "?"} (${identity.Arn ?? "?"})`);
      const filter = builder.source_ami_filter;
      const found = await clients.ec2.send(new DescribeImagesCommand(sourceImageQuery(builder)), { abortSignal: signal });
      const images = (found.Images ?? []).filter((i) => i.ImageId !== undefined);
      if (images.length === 0) lookups.push("ec2:DescribeImages: no image matches: the build would fail here");
      else if (images.length > 1 && filter !== undefined && !filter.most_recent) lookups.push(`ec2:DescribeImages: ${images.length} images match and most_recent is not set: the build would fail here`);
      else {
        const chosen = newest(images);
        source = `${chosen.ImageId ?? "?"} (${chosen.Name ?? "?"}, ${chosen.CreationDate ?? "?"})`;
        lookups.push(`ec2:DescribeImages: ${source}`);
        if (builder.platform === "windows") windows = windowsPlan(builder, chosen.Name ?? "");
      }
    } catch (error) {
      lookups.push(`skipped (${error instanceof Error ? error.message.split("\n")[0] : String(error)}): no credentials or no access; the plan shows the template's values`);
    }
  } else lookups.push("skipped (--offline)");

  const ssh = builder.communicator === "ssh";
  const cidrs = builder.temporary_security_group_source_cidrs?.join(", ") ?? `this machine's public address /32 (from ${builder.check_ip_url}, at build time)`;
  const iamName = temporaryIamName(buildId);
  const userData = await describeUserData(loaded, builder);
  const provisioners = loaded.template.provisioners.map((p, i) => `provisioner ${i + 1} (${p.type})`);
  const byStep: Record<string, Omit<PlannedStep, "step">> = {
    "check AWS credentials": { calls: ["sts:GetCallerIdentity (read-only)"], creates: [], note: `region ${region}; a journal under the state directory records each resource` },
    "find source image": { calls: ["ec2:DescribeImages (read-only)"], creates: [], note: `${source}${windows === undefined ? "" : `; ${windows}`}` },
    "create temporary key pair": { calls: ["ec2:ImportKeyPair"], creates: [{ type: "key pair", name: `kiln-${buildId}`, tags: tags() }], note: builder.platform === "windows" ? "RSA 4096, made here" : "ed25519, made here" },
    "create temporary security group": {
      calls: ["ec2:DescribeVpcs or ec2:DescribeSubnets (read-only)", "ec2:CreateSecurityGroup", ...(ssh ? ["ec2:AuthorizeSecurityGroupIngress"] : [])],
      creates: [{ type: "security group", name: `kiln-${buildId}`, tags: tags({ Name: `kiln-${buildId}` }) }],
      note: ssh ? `port ${builder.ssh_port}/tcp from ${cidrs}` : "no ingress (communicator none)",
    },
    "prepare instance profile": builder.temporary_iam_instance_profile_policy_document !== undefined
      ? { calls: ["iam:CreateRole", "iam:PutRolePolicy", "iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile"], creates: [{ type: "role", name: `/kiln/${iamName}`, tags: tags() }, { type: "instance profile", name: `/kiln/${iamName}`, tags: tags() }] }
      : builder.iam_instance_profile !== undefined ? { calls: ["iam:GetInstanceProfile (read-only)"], creates: [], note: `existing ${builder.iam_instance_profile}` } : { calls: [], creates: [], note: "none" },
    "launch build instance": {
      calls: ["ec2:RunInstances", "ec2:DescribeInstances (read-only, until running)"],
      creates: [{ type: "instance", name: `${builder.instance_type}${builder.spot_price === undefined ? "" : `, spot (${builder.spot_price}${builder.spot_fallback ? ", falls back to on demand" : ""})`}`, tags: tags({ Name: `kiln build ${buildId}`, ...builder.run_tags }) }],
      note: `IMDSv2 ${builder.metadata_options.http_tokens}; user data: ${userData}${builder.encrypt_boot ? "; root volume encrypted" : ""}`,
    },
    "connect over SSH": ssh ? { calls: ["ec2:GetConsoleOutput (read-only)"], creates: [], note: `${builder.ssh_username ?? (builder.platform === "windows" ? "Administrator" : "root")}@${builder.ssh_host ?? "the instance's address"}:${builder.ssh_port}, host key pinned from the console when printed` } : { calls: [], creates: [], note: "skipped (communicator none)" },
    "password (Windows)": builder.platform === "windows" && builder.windows.get_password ? { calls: ["ec2:GetPasswordData (read-only)"], creates: [] } : { calls: [], creates: [], note: "skipped" },
    provision: { calls: [], creates: [], note: provisioners.length === 0 ? "nothing to provision" : provisioners.join(", ") },
    "harden build instance": { calls: [], creates: [], note: builder.platform === "windows" || !ssh || loaded.template.harden === false ? "skipped" : "over SSH" },
    "clean build instance": { calls: [], creates: [], note: builder.platform === "windows" || !ssh || !loaded.template.clean.enabled ? "skipped" : "over SSH" },
    "generalize build instance": { calls: [], creates: [], note: builder.platform === "windows" && builder.windows.generalize && ssh ? "sysprep over SSH" : "skipped" },
    "stop build instance": { calls: ["ec2:StopInstances", "ec2:DescribeInstances (read-only)"], creates: [] },
    "create image": {
      calls: ["ec2:CreateImage", "ec2:DescribeImages (read-only, until available)", "ec2:CreateTags (snapshots)"],
      creates: [{ type: "image", name: builder.ami_name, tags: tags(builder.tags) }, { type: "snapshots", name: "of the image's volumes", tags: tags(builder.snapshot_tags) }],
    },
    "share and copy image": {
      calls: [...(builder.ami_users.length + builder.ami_groups.length > 0 ? ["ec2:ModifyImageAttribute"] : []), ...builder.ami_regions.map((r) => `ec2:CopyImage to ${r}`)],
      creates: builder.ami_regions.map((r) => ({ type: "image copy", name: `${builder.ami_name} in ${r}`, tags: tags(builder.tags) })),
      note: [builder.ami_users.length > 0 ? `launch permission for ${builder.ami_users.join(", ")}` : "", builder.ami_groups.includes("all") ? "PUBLIC" : ""].filter(Boolean).join("; ") || "not shared",
    },
    "write manifest": { calls: [], creates: [], note: "manifest.json in the output directory" },
  };
  const steps = amazonEbsBuilder.stepNames.map((step) => ({ step, ...(byStep[step] ?? { calls: [], creates: [] }) }));
  const cleanup = [
    "terminate the instance (and wait), delete volumes kept past termination",
    "delete the security group", "delete the key pair",
    ...(builder.temporary_iam_instance_profile_policy_document !== undefined ? ["delete the instance profile", "delete the role"] : []),
    "on failure only: deregister the image (and copies), delete their snapshots",
  ];
  const remains = [`image ${builder.ami_name} in ${region} and its snapshots`, ...builder.ami_regions.map((r) => `its copy in ${r} and that copy's snapshots`)];
  return { builder: label, type: "amazon-ebs", steps, cleanup, remains, lookups };
}

async function describeUserData(loaded: LoadedTemplate, builder: AmazonEbsBuilderConfig): Promise<string> {
  const text = await templateUserData(builder, loaded.directory);
  if (text === undefined) return builder.platform === "windows" ? "kiln's OpenSSH bootstrap for the launch agent" : "none";
  return `${builder.user_data_file ?? "inline"} (${Buffer.byteLength(text)} bytes, sha256 ${createHash("sha256").update(text).digest("hex").slice(0, 12)}…)`;
}

/** The plan as text, one block per builder. */
export function planText(plans: readonly BuilderPlan[]): string {
  const lines: string[] = [];
  for (const plan of plans) {
    lines.push(`builder ${plan.builder} (${plan.type})`, `  lookups: ${plan.lookups.join("; ")}`);
    for (const [i, s] of plan.steps.entries()) {
      lines.push(`  ${i + 1}/${plan.steps.length} ${s.step}${s.note === undefined ? "" : `: ${s.note}`}`);
      for (const c of s.calls) lines.push(`      call    ${c}`);
      for (const r of s.creates) lines.push(`      creates ${r.type} ${r.name}${r.tags === undefined ? "" : ` [${Object.entries(r.tags).map(([k, v]) => `${k}=${v}`).join(", ")}]`}`);
    }
    lines.push("  cleanup removes:", ...plan.cleanup.map((c) => `    - ${c}`), "  remains:", ...plan.remains.map((r) => `    - ${r}`));
  }
  return lines.join("\n");
}

/** Which Windows the build would find, or why it would stop (a version it cannot tell, a missing hash). */
function windowsPlan(builder: AmazonEbsBuilderConfig, imageName: string): string {
  try {
    const target = windowsTarget(builder.windows, imageName);
    return `Windows Server ${target.version}, ${target.agent}${openSshHashMissing(builder, target) ? "; the build would stop here: windows.openssh_sha256 is not set" : ""}`;
  } catch (error) {
    return `the build would stop here: ${error instanceof Error ? error.message : String(error)}`;
  }
}
