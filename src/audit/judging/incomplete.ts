import type { Finding } from "../finding.js";
import { rules } from "../rules.js";

/**
 * The limits an audit can reach. Reaching one leaves bytes unjudged, so it is a finding
 * (audit-incomplete) that fails the audit unless a baseline entry accepts it by path.
 */
export interface AuditLimits {
  /** Candidates the raw scan of an image keeps after its quick judgement (all threads together). */
  rawCandidates: number;
  /** Bytes a compressed file is decompressed to at most. */
  decompressedBytes: number;
  /** Bytes of an archive (zip, ar, tar) held to open its compressed members. */
  containerBytes: number;
}

export const defaultLimits: AuditLimits = {
  rawCandidates: 1_000_000,
  decompressedBytes: 1024 * 1024 * 1024,
  containerBytes: 256 * 1024 * 1024,
};

/** Why part of an image was not judged; the name is stable, for baselines and scripts. */
export type Gap =
  | "raw-candidates"
  | "decompressed-size"
  | "container-size"
  | "nested-too-deep"
  | "corrupt-compressed"
  | "decompressor-missing"
  | "unreadable"
  | "filesystem-damage";

/** `path` is inside the image; "/" when the gap is the image's as a whole. */
export function incomplete(gap: Gap, path: string, message: string): Finding {
  return {
    rule: rules.auditIncomplete, severity: rules.auditIncomplete.severity,
    message: `audit incomplete (${gap}): ${message}`,
    location: { kind: "file", path },
  };
}
