import type { AmazonEbsBuilderConfig } from "../../template/schema.js";

/** How the build instance's metadata service answers, as `kiln plan` says it. */
export function imdsChoice(builder: Pick<AmazonEbsBuilderConfig, "metadata_options" | "imds_support">): string {
  const instance = builder.metadata_options.http_tokens === "required" ? "IMDSv2 only (http_tokens required)" : "IMDSv1 and IMDSv2 (http_tokens optional)";
  return `${instance}${builder.imds_support === "v2.0" ? "; the image requires IMDSv2 (imds_support v2.0)" : ""}`;
}

/** A line of user data that asks the metadata service for something. */
export interface MetadataRead {
  line: number;
  text: string;
}

// The service's addresses and name: IPv4, IPv6 (Nitro), and the DNS name of older docs.
const metadataAddress = /169\.254\.169\.254|fd00:ec2::254|fd00:ec2(:0+){5}:254|instance-data(\.ec2\.internal)?[:/]/i;
// The IMDSv2 session: a token asked for with PUT /latest/api/token and sent in this header.
const usesToken = /X-aws-ec2-metadata-token|\/latest\/api\/token/i;

/**
 * The lines of user data that read the metadata service without an IMDSv2 token (IMDSv1), in
 * order. User data that asks for a token anywhere is taken to use it everywhere.
 */
export function tokenlessMetadataReads(userData: string): MetadataRead[] {
  const lines = userData.split(/\r?\n/);
  // A token named only in a comment is no token.
  const comment = /^\s*(#|REM\b|::|\/\/)/i;
  if (lines.some((line) => !comment.test(line) && usesToken.test(line))) return [];
  return lines.flatMap((text, i) => (metadataAddress.test(text) && !comment.test(text) ? [{ line: i + 1, text: text.trim() }] : []));
}

/**
 * What to say about user data that reads the metadata service without a token: with
 * http_tokens required it gets 401 and whatever it fetches (the launch key) never comes; with
 * optional it works, and the way to IMDSv2 is named.
 */
export function metadataWarning(builder: Pick<AmazonEbsBuilderConfig, "metadata_options">, where: string, reads: readonly MetadataRead[]): string | undefined {
  const first = reads[0];
  if (first === undefined) return undefined;
  // The line is named, not quoted: user data may carry a secret on the same line.
  const shown = `${where}:${reads.map((r) => r.line).join(", ")}`;
  const toV2 = "to move to IMDSv2, ask for a token first (PUT http://169.254.169.254/latest/api/token with X-aws-ec2-metadata-token-ttl-seconds), send it as X-aws-ec2-metadata-token, then set metadata_options.http_tokens: required";
  return builder.metadata_options.http_tokens === "required"
    ? `user data reads the instance metadata without an IMDSv2 token at ${shown}, and http_tokens is required: that read gets 401 on AWS. Set metadata_options.http_tokens: optional, or ${toV2}`
    : `user data reads the instance metadata without an IMDSv2 token (IMDSv1) at ${shown}; it works because http_tokens is optional (Packer's default, kept for this template). ${toV2[0]?.toUpperCase()}${toV2.slice(1)}`;
}
