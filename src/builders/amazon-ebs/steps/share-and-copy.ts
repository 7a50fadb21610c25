import { CopyImageCommand, ModifyImageAttributeCommand, type LaunchPermission } from "@aws-sdk/client-ec2";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { resolve } from "node:path";
import { loadBaseline } from "../../../audit/judging/baseline.js";
import type { StepContext } from "../../../pipeline/step.js";
import { auditImageForSharing, leavesAccount, type Audience } from "../../../publish/share-gate.js";
import type { ImageSettings } from "../image-settings.js";
import { regionalClients, type AwsClients } from "../aws-clients.js";
import { aws } from "../aws-errors.js";
import { imageAvailable, type MachineImage } from "../image-state.js";
import { clientToken, kilnTags, tagOnCreate } from "../tags.js";
import type { BuildJournal } from "../journal.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import { createResource, track } from "../tracked-resource.js";
import { refuseUnencrypted } from "./create-image.js";
import { trackSnapshots } from "../snapshot-tracking.js";

type ShareInput = AmazonEbsBuildRequest & { aws: AwsClients; journal: BuildJournal; image: MachineImage };

/**
 * Launch permissions for `ami_users` (and everyone, only with `public: true`), then a copy in
 * each of `ami_regions` (encrypted with that region's KMS key when one is given), each tagged,
 * shared the same way, recorded in the journal and undone if the build fails later.
 */
export const shareAndCopy: Step<ShareInput, { copies: MachineImage[] }, AmazonEbsFacts> = {
  name: "share and copy image",
  plan: ({ builder, tags }) => ({
    calls: [
      ...(leavesAccount(audienceOf(builder)) ? ["ebs:ListSnapshotBlocks, ebs:GetSnapshotBlock (read-only): the image's snapshots read back and audited before it is shared"] : []),
      ...(builder.ami_users.length + builder.ami_groups.length > 0 ? ["ec2:ModifyImageAttribute"] : []), ...builder.ami_regions.map((r) => `ec2:CopyImage to ${r}`),
    ],
    creates: builder.ami_regions.map((r) => ({ type: "image copy", name: `${builder.ami_name} in ${r}`, tags: tags(builder.tags) })),
    note: [builder.ami_users.length > 0 ? `launch permission for ${builder.ami_users.join(", ")}` : "", builder.ami_groups.includes("all") ? "PUBLIC" : ""].filter(Boolean).join("; ") || "not shared",
  }),
  run: async (ctx, input) => {
    const gate = amazonEbsGate(ctx, input);
    const copies = await shareAndCopyImage(ctx, { ...input, settings: input.builder, gate });
    const shared = [...input.builder.ami_users, ...(input.builder.ami_groups.includes("all") ? ["everyone (public)"] : [])];
    return {
      output: { copies },
      summary: `${shared.length === 0 ? "not shared" : `shared with ${shared.join(", ")}`}; ${copies.length === 0 ? "no copies" : copies.map((c) => `${c.id} in ${c.region}`).join(", ")}`,
    };
  },
};

export interface ShareJob {
  aws: AwsClients;
  journal: BuildJournal;
  buildId: string;
  kilnVersion: string;
  settings: ImageSettings;
  image: MachineImage;
  /** Run once before the first share that leaves the account (the audit gate); throws to refuse. */
  gate: (audience: Audience) => Promise<void>;
}

/**
 * Launch permissions for the users (and everyone, only with `public: true`), then a copy in each
 * region (encrypted with that region's KMS key when one is given), each tagged, shared the same
 * way, recorded in the journal and undone if the build fails later. Before anything is shared
 * outside the account, the gate audits the image's bytes.
 */
export async function shareAndCopyImage(ctx: StepContext, input: ShareJob): Promise<MachineImage[]> {
  const { settings: builder, aws: clients, image } = input;
  const audience = audienceOf(builder);
  if (leavesAccount(audience)) await input.gate(audience);
  await shareImage(clients, image.id, audience, ctx.signal);
  const copies: MachineImage[] = [];
  const tracking = { journal: input.journal, builder };
  for (const region of builder.ami_regions.filter((r) => r !== clients.region)) {
    const regional = regionalClients(builder, region);
    // Encrypted with that region's key; "" (or none, with encrypt_boot) is that region's AWS-managed key.
    const kmsKeyId = builder.ami_region_kms_key_ids[region];
    const encrypted = builder.encrypt_boot || kmsKeyId !== undefined;
    // One copy per region even when an answer is lost and the call retried (idempotent by token).
    const copied = await createResource(`copying the image to ${region} (ec2:CopyImage)`, (signal) => regional.ec2.send(new CopyImageCommand({
      SourceImageId: image.id, SourceRegion: clients.region, Name: image.name, ClientToken: clientToken(input.buildId, `copy-${region}`),
      ...(builder.ami_description === undefined ? {} : { Description: builder.ami_description }),
      ...(encrypted ? { Encrypted: true, ...(kmsKeyId === undefined || kmsKeyId === "" ? {} : { KmsKeyId: kmsKeyId }) } : {}),
      // Tagged in the call, so `kiln sweep` knows the copy while it is pending (hours, for a large image).
      TagSpecifications: [...tagOnCreate(["image"], kilnTags(input.buildId, input.kilnVersion, builder.tags)), ...tagOnCreate(["snapshot"], kilnTags(input.buildId, input.kilnVersion, builder.snapshot_tags))],
    }), { abortSignal: signal }));
    const id = copied.ImageId ?? "";
    await track(ctx, { ...tracking, aws: regional }, { type: "image", id, temporary: false, region }, `deregister copy ${id} in ${region} and delete its snapshots`);
    const copy = await imageAvailable(ctx, regional, id, { builder, buildId: input.buildId, kilnVersion: input.kilnVersion }, true);
    await trackSnapshots(ctx, { ...tracking, aws: regional }, copy, region);
    if (encrypted) refuseUnencrypted(copy);
    copies.push(copy);
    await shareImage(regional, id, audience, ctx.signal);
  }
  return copies;
}

export function audienceOf(settings: Pick<ImageSettings, "ami_users" | "ami_groups" | "public">): Audience {
  return { users: settings.ami_users, public: settings.public && settings.ami_groups.includes("all") };
}

/**
 * The amazon-ebs builder's gate: its image was made from a booted instance (seed 004's risks:
 * deleted files, histories and keys of the build may be in free blocks), so its snapshots are
 * read back and audited, free space included, before anyone outside the account may launch it.
 */
function amazonEbsGate(ctx: StepContext, input: ShareInput): (audience: Audience) => Promise<void> {
  return async (audience) => {
    const { loaded, builder, aws: clients, image } = input;
    const settings = loaded.template.audit === false ? { fail_on: "high" as const, baseline: undefined } : loaded.template.audit;
    const baseline = settings.baseline === undefined ? undefined : await loadBaseline(resolve(loaded.directory, settings.baseline));
    await auditImageForSharing(clients, image.id, audience, { failOn: settings.fail_on, baseline, signal: ctx.signal, progress: (line) => ctx.report.info(line), report: (line) => ctx.report.info(line), redactor: ctx.report.redactor, profile: builder.profile });
  };
}

/** Launch permissions for the audience (the gate has run): `kiln share` and both build paths. */
export async function shareImage(clients: AwsClients, id: string, audience: Audience, signal: AbortSignal): Promise<void> {
  const add: LaunchPermission[] = [...audience.users.map((UserId) => ({ UserId })), ...(audience.public ? [{ Group: "all" as const }] : [])];
  if (add.length === 0) return;
  await aws(`sharing image ${id} in ${clients.region} (ec2:ModifyImageAttribute)`, () => clients.ec2.send(new ModifyImageAttributeCommand({ ImageId: id, LaunchPermission: { Add: add } }), { abortSignal: signal }), signal);
}
