import type { Rule, Severity } from "./rules.js";

/** Where a finding is: a path inside the image, or bytes of the image no live file owns. */
export type FindingLocation =
  | { kind: "file"; path: string; line?: number }
  | {
    kind: "raw";
    /** Byte offset in the audited image file (not in the partition). */
    offset: number;
    /** What the bytes are: free blocks, the blocks of a deleted file, the journal, or no filesystem kiln reads. */
    area: "unallocated" | "deleted-file" | "journal" | "outside-filesystem" | "entry-slack";
    /** The deleted inode, and the name it had when its directory entry survives. */
    inode?: number;
    formerPath?: string;
    /** entry-slack: the live entry whose blocks keep these bytes beyond its content. */
    path?: string;
  };

/** One problem in an image: which rule, where, a masked excerpt (never the secret), and the fix. */
export interface Finding {
  rule: Rule;
  /** Usually the rule's own; a finding may be judged more or less severe in context. */
  severity: Severity;
  location: FindingLocation;
  /** What was found, in a sentence. */
  message: string;
  /** A short excerpt with every secret character masked. */
  excerpt?: string;
}

export function describeLocation(location: FindingLocation): string {
  if (location.kind === "file") return location.line === undefined ? location.path : `${location.path}:${location.line}`;
  const what = {
    unallocated: "unallocated space",
    "deleted-file": "blocks of a deleted file",
    journal: "the filesystem journal",
    "outside-filesystem": "bytes outside any ext filesystem",
    "entry-slack": `blocks of ${location.path ?? "a live entry"}, beyond its content`,
  }[location.area];
  const inode = location.inode === undefined ? "" : `, inode ${location.inode}`;
  const former = location.formerPath === undefined ? "" : `, was ${location.formerPath}`;
  return `byte ${location.offset} (${what}${inode}${former})`;
}

/** A stable key for de-duplicating and for baselines: the rule and the path or offset. */
export function findingKey(finding: Finding): string {
  const { location } = finding;
  return location.kind === "file" ? `${finding.rule.id} ${location.path}` : `${finding.rule.id} @${location.offset}`;
}
