import { createHash } from "node:crypto";
import { DescribeImagesCommand } from "@aws-sdk/client-ec2";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import type { BuilderRuntime } from "../builder-kind.js";
import type { LoadedTemplate } from "../../template/load.js";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";
import { runBuild } from "../../pipeline/run-build.js";
import { windowsTarget } from "../../windows/launch-agent.js";
import { amazonEbsPipeline, compositionWarnings } from "./amazon-ebs-builder.js";
import { awsClients, buildRegion, type AwsClients } from "./aws-clients.js";
import type { AmazonEbsFacts } from "./plan-facts.js";
import { chosenInterface, isPrivate } from "./ssh-address.js";
import { imageNameTaken, newest, sourceImageQuery } from "./steps/source-image.js";
import { kilnTags } from "./tags.js";
import { openSshHashMissing, templateUserData } from "./user-data.js";

export const amazonEbsRuntime: BuilderRuntime<AmazonEbsBuilderConfig> = {
  build: async ({ loaded, builder, buildId, kilnVersion, outputDirectory, options, run, report, redactor }) => {
    const withProfile = options.profile === undefined ? builder : { ...builder, profile: options.profile };
    for (const warning of compositionWarnings(builder, loaded.template.harden !== false)) report.warn(warning);
    // Asked for by --show-password: straight to the terminal, past the redacting output (and any --json log).
    const secrets = { addSecret: (v: string) => redactor.addSecret(v), ...(options.showPassword === true ? { reveal: (text: string) => void process.stderr.write(`${text}\n`) } : {}) };
    const state = await runBuild(amazonEbsPipeline(builder), {
      loaded, builder: withProfile, buildId, kilnVersion, outputDirectory, secrets,
      ...(options.debugKeysDirectory === undefined ? {} : { debugKeysDirectory: options.debugKeysDirectory }),
    }, run);
    return `built ${state.image.id} in ${state.image.region} in ${report.elapsed().toFixed(1)}s`;
  },
  plan: async (loaded, configured, label, { probe, profile }) => {
    const builder = profile === undefined ? configured : { ...configured, profile };
    const buildId = `${label}-<time>-<random>`;
    const facts: AmazonEbsFacts = {
      loaded, builder, buildId,
      region: builder.region ?? "(from AWS_REGION or the profile)",
      source: builder.source_ami ?? `the newest image matching ${JSON.stringify(builder.source_ami_filter?.filters ?? {})} owned by ${(builder.source_ami_filter?.owners ?? []).join(", ")}`,
      ...(builder.platform === "windows" ? { windows: "Windows (version and launch agent from the source image's name)" } : {}),
      userData: await describeUserData(loaded, builder),
      ssh: sshFacts(builder),
      imageName: "the name is checked free before anything is created",
      tags: (extra = {}) => Object.fromEntries(kilnTags(buildId, "<version>", extra).map((t) => [t.Key, t.Value])),
    };
    const lookups = probe ? await lookUp(builder, facts) : ["skipped (--offline)"];
    const cleanup = [
      "terminate the instance (and wait), delete volumes kept past termination",
      "delete the security group", "delete the key pair",
      ...(builder.temporary_iam_instance_profile_policy_document !== undefined ? ["delete the instance profile", "delete the role"] : []),
      "on failure only: deregister the image (and copies), delete their snapshots",
    ];
    const remains = [`image ${builder.ami_name} in ${facts.region} and its snapshots`, ...builder.ami_regions.map((r) => `its copy in ${r} and that copy's snapshots`)];
    return { builder: label, type: "amazon-ebs", steps: amazonEbsPipeline(builder).plan(facts), cleanup, remains, lookups };
  },
};

/** Where SSH goes and who may reach it, as far as the template tells before the subnet is known. */
function sshFacts(builder: AmazonEbsBuilderConfig): AmazonEbsFacts["ssh"] {
  // The build's own choice, with a subnet assumed to give public addresses: only the subnet can say otherwise.
  const choice = chosenInterface(builder, true);
  const decided = builder.ssh_interface !== undefined || builder.associate_public_ip_address !== undefined;
  const address = builder.ssh_host ?? `the instance's ${choice.replace("_", " ")}${decided ? "" : " (its private ip where the subnet gives no public one)"}`;
  const cidrs = builder.temporary_security_group_source_cidrs?.join(", ")
    ?? (isPrivate(choice) ? "this machine's own address on its route into the subnet /32 (found at build time)" : `this machine's public address /32 (from ${builder.check_ip_url}, at build time)`);
  return { address, cidrs };
}

/** The read-only calls `kiln plan` makes with credentials: who, which source image, whether the name is free. */
async function lookUp(builder: AmazonEbsBuilderConfig, facts: AmazonEbsFacts): Promise<string[]> {
  const lookups: string[] = [];
  try {
    facts.region = await buildRegion(builder);
    const clients: AwsClients = awsClients({ region: facts.region, profile: builder.profile, ec2Endpoint: builder.endpoint });
    const signal = AbortSignal.timeout(20_000);
    const identity = await clients.sts.send(new GetCallerIdentityCommand({}), { abortSignal: signal });
    lookups.push(`sts:GetCallerIdentity: account ${identity.Account ?? "?"} (${identity.Arn ?? "?"})`);
    const filter = builder.source_ami_filter;
    const images = ((await clients.ec2.send(new DescribeImagesCommand(sourceImageQuery(builder)), { abortSignal: signal })).Images ?? []).filter((i) => i.ImageId !== undefined);
    if (images.length === 0) lookups.push("ec2:DescribeImages: no image matches: the build would fail here");
    else if (images.length > 1 && filter !== undefined && !filter.most_recent) lookups.push(`ec2:DescribeImages: ${images.length} images match and most_recent is not set: the build would fail here`);
    else {
      const chosen = newest(images);
      facts.source = `${chosen.ImageId ?? "?"} (${chosen.Name ?? "?"}, ${chosen.CreationDate ?? "?"})`;
      lookups.push(`ec2:DescribeImages: ${facts.source}`);
      if (builder.platform === "windows") facts.windows = windowsPlan(builder, chosen.Name ?? "");
    }
    const taken = await imageNameTaken(builder, clients, signal);
    facts.imageName = taken === undefined ? `"${builder.ami_name}" is free in every region` : `the build would stop here: ${taken}`;
    lookups.push(`ec2:DescribeImages (name): ${facts.imageName}`);
  } catch (error) {
    lookups.push(`skipped (${error instanceof Error ? error.message.split("\n")[0] : String(error)}): no credentials or no access; the plan shows the template's values`);
  }
  return lookups;
}

async function describeUserData(loaded: LoadedTemplate, builder: AmazonEbsBuilderConfig): Promise<string> {
  const text = await templateUserData(builder, loaded.directory);
  if (text === undefined) return builder.platform === "windows" ? "kiln's OpenSSH bootstrap for the launch agent" : "none";
  return `${builder.user_data_file ?? "inline"} (${text.length} bytes, sha256 ${createHash("sha256").update(text).digest("hex").slice(0, 12)}…)`;
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
