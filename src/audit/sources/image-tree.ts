import type { Finding } from "../finding.js";

/** One entry of an image's file tree, whatever the image is stored as (directory, tar, ext4). */
export interface TreeEntry {
  /** Absolute inside the image, "/" separated, no trailing slash: "/etc/shadow". */
  path: string;
  type: "file" | "directory" | "symlink" | "other";
  /** Permission bits, setuid/setgid/sticky included (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of content for a file; 0 for the rest. */
  size: number;
  linkTarget?: string;
  /** Extended attributes, every namespace (user., trusted., security., system.): bytes a secret can hide in. */
  xattrs?: { name: string; value: Buffer }[];
}

/**
 * An entry and a way to read its content once, in order. For a streamed archive the content is
 * only readable until the next entry is asked for; an entry whose content is not read is skipped.
 */
export interface TreeFile {
  entry: TreeEntry;
  read(): AsyncIterable<Buffer>;
}

/** The files of an image, walked once. */
export interface ImageTree {
  /** What is being read, for messages: "directory /srv/root", "tar archive rootfs.tar.zst". */
  readonly description: string;
  /** Parts the walk could not read (audit-incomplete findings), known once it has ended. */
  readonly gaps?: readonly Finding[];
  entries(signal?: AbortSignal): AsyncIterable<TreeFile>;
}
