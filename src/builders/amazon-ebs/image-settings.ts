import type { AmazonEbsBuilderConfig, AmazonPublishConfig } from "../../template/schema.js";

/**
 * What naming, tagging, waiting for, copying and sharing an image read: the amazon-ebs builder's
 * settings, and `publish.amazon`'s spelled the same way, so both paths share one implementation.
 */
export type ImageSettings = Pick<AmazonEbsBuilderConfig, "ami_name" | "ami_description" | "tags" | "snapshot_tags" | "imds_support" | "ami_users" | "ami_groups" | "public"
  | "ami_regions" | "ami_region_kms_key_ids" | "encrypt_boot" | "kms_key_id" | "profile" | "wait" | "aws_polling">;

/** `publish.amazon` as image settings: one tag set for image and snapshot, the snapshot's key for every copy. */
export function publishImageSettings(amazon: AmazonPublishConfig): ImageSettings {
  const encrypted = amazon.kms_key_id !== undefined;
  return {
    ami_name: amazon.name, ami_description: amazon.description, tags: amazon.tags, snapshot_tags: amazon.tags,
    imds_support: amazon.imds_support === false ? undefined : amazon.imds_support,
    ami_users: amazon.users, ami_groups: amazon.groups, public: amazon.public, ami_regions: amazon.regions,
    // A copy is encrypted with its region's key when given (a key ARN is one region's), else that region's AWS-managed key.
    ami_region_kms_key_ids: encrypted ? Object.fromEntries(amazon.regions.map((r) => [r, amazon.region_kms_key_ids?.[r] ?? ""])) : {},
    encrypt_boot: encrypted, kms_key_id: amazon.kms_key_id, profile: amazon.profile,
    wait: { delay_seconds: 5, timeout_seconds: 1800, image_timeout_seconds: 4 * 3600 }, aws_polling: undefined,
  };
}
