import { GetEbsDefaultKmsKeyIdCommand, GetEbsEncryptionByDefaultCommand } from "@aws-sdk/client-ec2";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { renderTextReport } from "../../audit/report/text-report.js";
import { awsClients, buildRegion, regionalClients } from "../../builders/amazon-ebs/aws-clients.js";
import { aws, awsCode } from "../../builders/amazon-ebs/aws-errors.js";
import type { AwsClients } from "../../builders/amazon-ebs/aws-clients.js";
import { publishImageSettings } from "../../builders/amazon-ebs/image-settings.js";
import { BuildJournal } from "../../builders/amazon-ebs/journal.js";
import { imageNameTaken } from "../../builders/amazon-ebs/steps/source-image.js";
import { KilnError } from "../../errors.js";
import type { Step } from "../../pipeline/step.js";
import { ebsClient } from "../ebs-client.js";
import { auditDiskForSharing, checkPublicSharingAllowed, describeAudience, leavesAccount, refuseIfFailed, type Audience } from "../share-gate.js";
import { audienceOf } from "../../builders/amazon-ebs/steps/share-and-copy.js";
import type { PublishAccess, PublishFacts, PublishRequest } from "./publish-request.js";

/**
 * Everything that can refuse a publish, before a byte is uploaded: the credentials, the image
 * name (free in every region), the account's block on public images, and — when the image will
 * leave the account — the audit of the exact disk file. Then the journal is opened (or a dead
 * publish's journal taken over, to resume its upload).
 */
export const checkPublish: Step<PublishRequest, PublishAccess, PublishFacts> = {
  name: "check AWS access",
  plan: ({ amazon, region }) => ({
    calls: ["sts:GetCallerIdentity (read-only)", "ec2:DescribeImages: the name is free in each region (read-only)", ...(amazon.public ? ["ec2:GetImageBlockPublicAccessState (read-only)"] : []),
      ...(leavesAccount(audienceOf(publishImageSettings(amazon))) ? ["ec2:GetEbsEncryptionByDefault, ec2:GetEbsDefaultKmsKeyId: an encrypted image cannot be public, nor shared under aws/ebs (read-only)"] : [])],
    creates: [],
    note: `region ${region}${leavesAccount(audienceOf(publishImageSettings(amazon))) ? `; shared with ${describeAudience(audienceOf(publishImageSettings(amazon)))}: the disk is audited first` : ""}`,
  }),
  run: async (ctx, request) => {
    const { amazon, disk, buildId } = request;
    const settings = publishImageSettings(amazon);
    const clients = awsClients({ region: await buildRegion(amazon), profile: amazon.profile });
    const identity = await aws(`checking the AWS credentials${amazon.profile === undefined ? "" : ` of profile ${amazon.profile}`} (sts:GetCallerIdentity)`, () => clients.sts.send(new GetCallerIdentityCommand({}), { abortSignal: ctx.signal }), ctx.signal);
    const taken = request.resume === undefined ? await imageNameTaken(settings, clients, ctx.signal) : undefined;
    if (taken !== undefined) throw new KilnError("KILN_IMAGE_NAME_TAKEN", taken, { hint: "give publish.amazon.name another name, or deregister that image" });
    const audience = audienceOf(settings);
    const warn = (line: string): void => ctx.report.warn(line);
    // The image's region and each copy's: the image and its copies are shared alike.
    for (const region of leavesAccount(audience) ? [...new Set([clients.region, ...settings.ami_regions])] : []) {
      const regional = region === clients.region ? clients : regionalClients(settings, region);
      if (audience.public) await checkPublicSharingAllowed(regional, ctx.signal, warn);
      // The snapshot is encrypted here when kms_key_id is set; a copy when its region has a key.
      const ownKey = region === clients.region ? amazon.kms_key_id !== undefined : settings.encrypt_boot;
      if (!ownKey) await checkDefaultEncryption(regional, audience, ctx.signal, warn);
    }
    if ((leavesAccount(audience) || request.gate.always === true) && request.gate.auditedSha256 !== disk.sha256) {
      ctx.report.info(`auditing ${disk.path} before it is ${leavesAccount(audience) ? `shared with ${describeAudience(audience)}` : "published (its build skipped the audit)"}`);
      const result = await auditDiskForSharing(disk.path, { failOn: request.gate.failOn, baseline: request.gate.baseline, signal: ctx.signal, progress: (line) => ctx.report.info(line) });
      for (const line of renderTextReport(result, { redactor: ctx.report.redactor, color: false })) ctx.report.info(line);
      refuseIfFailed([result], disk.path, leavesAccount(audience) ? audience : "published");
    }
    const journal = request.resume === undefined
      ? await BuildJournal.start({ buildId, region: clients.region, ...(amazon.profile === undefined ? {} : { profile: amazon.profile }) }, undefined, "publish")
      : await BuildJournal.adopt(request.resume.file, request.resume.record);
    ctx.cleanup.defer(`close publish journal ${journal.path}`, async () => {
      const left = journal.remaining();
      if (left.length === 0) return journal.remove();
      throw new KilnError("KILN_RESOURCES_LEFT", `publish ${buildId}: ${left.length} resource${left.length === 1 ? "" : "s"} could not be removed: ${left.map((r) => `${r.type} ${r.id}`).join(", ")} (run: kiln cleanup ${buildId})`, { hint: `run: kiln cleanup ${buildId}` });
    });
    const ebs = ebsClient(clients.region, amazon.profile, amazon.max_concurrency);
    ctx.cleanup.defer("close the EBS connections", () => Promise.resolve(ebs.destroy()));
    return { output: { aws: clients, ebs, journal, settings, account: identity.Account ?? "unknown" }, summary: `account ${identity.Account ?? "?"}, region ${clients.region}` };
  },
};

/**
 * EBS encryption by default, read before the upload when the image is to leave the account and
 * kiln names no key: with it on, AWS encrypts every new snapshot (StartSnapshot cannot make an
 * unencrypted one, EBS user guide "Encryption outcomes for EBS direct APIs") and every copy, with
 * the account's default key. An encrypted image cannot be public, and one under the AWS-managed
 * key aws/ebs cannot be shared with other accounts: both would fail only after the whole upload.
 * Credentials that may not read the setting leave the decision to AWS (a warning).
 */
export async function checkDefaultEncryption(clients: AwsClients, audience: Audience, signal: AbortSignal, warn: (line: string) => void): Promise<void> {
  let key: string | undefined;
  try {
    const on = (await aws(`reading EBS encryption by default in ${clients.region} (ec2:GetEbsEncryptionByDefault)`, () => clients.ec2.send(new GetEbsEncryptionByDefaultCommand({}), { abortSignal: signal }), signal)).EbsEncryptionByDefault;
    if (on !== true) return;
    if (!audience.public) key = (await aws(`reading the default EBS key of ${clients.region} (ec2:GetEbsDefaultKmsKeyId)`, () => clients.ec2.send(new GetEbsDefaultKmsKeyIdCommand({}), { abortSignal: signal }), signal)).KmsKeyId;
  } catch (error) {
    if (signal.aborted) throw error;
    warn(`could not read EBS encryption by default in ${clients.region} (${awsCode(error) || "error"}): if it is on, AWS encrypts the image, and may then refuse to share it`);
    return;
  }
  if (audience.public) {
    throw new KilnError("KILN_ENCRYPTION", `EBS encryption by default is on in ${clients.region}: the image would be encrypted, and AWS does not allow encrypted images to be public`, {
      hint: `if it is meant to be public, an administrator turns it off with: aws ec2 disable-ebs-encryption-by-default --region ${clients.region}; or share it with accounts (users) and a customer-managed kms_key_id instead`,
    });
  }
  if (key === undefined || key === "" || /(^|:)alias\/aws\/ebs$/.test(key)) {
    throw new KilnError("KILN_ENCRYPTION", `EBS encryption by default is on in ${clients.region} with the AWS-managed key aws/ebs: the image would be encrypted with it, and AWS refuses to share such an image with ${describeAudience(audience)}`, {
      hint: "set kms_key_id (and region_kms_key_ids for copies) to customer-managed keys whose policy lets those accounts use them",
    });
  }
}
