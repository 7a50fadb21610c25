import { loadBaseline } from "../audit/judging/baseline.js";
import type { Severity } from "../audit/rules.js";
import { awsClients, buildRegion } from "../builders/amazon-ebs/aws-clients.js";
import { shareImage } from "../builders/amazon-ebs/steps/share-and-copy.js";
import type { Reporter } from "../report/reporter.js";
import { auditImageForSharing, checkPublicSharingAllowed, describeAudience, type Audience } from "./share-gate.js";

/**
 * `kiln share`: any AMI these credentials own — built by Packer, by kiln's amazon-ebs builder, by
 * anyone — shared only after its snapshots, read back block by block, pass the raw-image audit.
 */
export async function shareExistingImage(args: {
  imageId: string; audience: Audience; region?: string | undefined; profile?: string | undefined; failOn: Severity; acceptFindings?: string | undefined; report: Reporter; signal: AbortSignal;
}): Promise<void> {
  const { imageId, audience, report, signal } = args;
  const clients = awsClients({ region: await buildRegion({ region: args.region, profile: args.profile }), profile: args.profile });
  if (audience.public) await checkPublicSharingAllowed(clients, signal, (line) => report.warn(line));
  const baseline = args.acceptFindings === undefined ? undefined : await loadBaseline(args.acceptFindings);
  await auditImageForSharing(clients, imageId, audience, { failOn: args.failOn, baseline, signal, progress: (line) => report.info(line), report: (line) => report.info(line), redactor: report.redactor, profile: args.profile });
  await shareImage(clients, imageId, audience, signal);
  report.info(`${imageId} in ${clients.region} is shared with ${describeAudience(audience)}`);
}
