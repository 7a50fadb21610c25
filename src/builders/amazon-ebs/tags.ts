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

/**
 * The idempotency token of one create call of a build (EC2 allows 64 ASCII characters): a
 * retried call with the same token returns the first call's resource instead of a second one.
 */
export function clientToken(buildId: string, call: string): string {
  return `${call}-${buildId}`.slice(0, 64);
}

/** Tags applied in the create call itself, so no resource exists untagged even for a moment. */
export function tagOnCreate(types: ResourceType[], tags: Tag[]): TagSpecification[] {
  return types.map((ResourceType) => ({ ResourceType, Tags: tags }));
}
