import { createHash } from "node:crypto";
import type { ResourceType, Tag, TagSpecification } from "@aws-sdk/client-ec2";

/** Fully given tags, which EC2 and IAM (whose Tag needs Key and Value) both take. */
export type KilnTag = { Key: string; Value: string };

/**
 * The tags on everything a build creates: `kiln:build-id` lets `kiln sweep` find a resource even
 * when the build's journal is lost, `kiln:created-by` tells a person who made it.
 */
export function kilnTags(buildId: string, kilnVersion: string, extra: Record<string, string> = {}): KilnTag[] {
  return [
    ...Object.entries(extra).map(([Key, Value]) => ({ Key, Value })),
    { Key: "kiln:build-id", Value: buildId },
    { Key: "kiln:created-by", Value: `kiln ${kilnVersion}` },
  ];
}

/** What EC2 takes in a client token: printable ASCII, no spaces. */
const printable = /^[\x21-\x7e]*$/;

/**
 * The idempotency token of one create call of a build (EC2 allows 64 ASCII characters): a
 * retried call with the same token returns the first call's resource instead of a second one.
 * `<call>-<build id>` when that fits; else the call, a hash of both and the build id's end
 * (its time and random part), as a cut of the whole would drop exactly what tells builds apart
 * and reuse another build's token (IdempotentParameterMismatch).
 */
export function clientToken(buildId: string, call: string): string {
  const whole = `${call}-${buildId}`;
  if (whole.length <= 64 && printable.test(whole)) return whole;
  const digest = createHash("sha256").update(`${call}\n${buildId}`).digest("hex").slice(0, 16);
  const ascii = (text: string): string => text.replace(/[^\x21-\x7e]/g, "_");
  const end = ascii(buildId.slice(-22)); // YYYYMMDD-HHMMSS-<hex>
  return `${ascii(call).slice(0, 64 - end.length - digest.length - 2)}-${digest}-${end}`;
}

/** Tags applied in the create call itself, so no resource exists untagged even for a moment. */
export function tagOnCreate(types: ResourceType[], tags: Tag[]): TagSpecification[] {
  return types.map((ResourceType) => ({ ResourceType, Tags: tags }));
}
