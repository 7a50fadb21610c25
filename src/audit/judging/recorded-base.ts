import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { CancelledError } from "../../errors.js";
import type { ImageTree } from "../sources/image-tree.js";

/**
 * The base kiln built, as it was before any provisioner ran: the sha256 of every regular file,
 * and the Debian package that installed it where dpkg's records said so *then*. Recorded on the
 * host, kept outside the tree, it is what a stock-file exemption rests on: nothing the image or a
 * provisioner writes later can add to it.
 */
export interface RecordedBase {
  /** What the base was, for the report: "mmdebstrap bookworm base sha256:…". */
  description: string;
  /** By absolute path in the image: its sha256, and its package when the file was stock. */
  files: Map<string, { sha256: string; package?: string }>;
}

const md5sumsList = /^\/var\/lib\/dpkg\/info\/([^/]+)\.md5sums$/;
const status = "/var/lib/dpkg/status";
// usrmerge: a package may list lib/… while the file lives at /usr/lib/… (and the other way).
const merged = /^\/(?:bin|sbin|lib|lib32|lib64|libx32)\//;

/** Walks the freshly unpacked base once (a DirectoryTree: links reported, never followed). */
export async function recordBase(tree: ImageTree, description: string, signal?: AbortSignal): Promise<RecordedBase> {
  const hashes = new Map<string, { sha256: string; md5: string }>();
  const links: [string, string][] = [];
  const records = new Map<string, { md5: string; package: string }>();
  for await (const file of tree.entries(signal)) {
    if (signal?.aborted === true) throw new CancelledError();
    const { entry } = file;
    if (entry.type === "other" && entry.linkTarget !== undefined) links.push([entry.path, entry.linkTarget]);
    if (entry.type !== "file") continue;
    const sha256 = createHash("sha256");
    const md5 = createHash("md5");
    const kept: Buffer[] = [];
    const isRecord = md5sumsList.test(entry.path) || entry.path === status;
    for await (const chunk of file.read()) {
      sha256.update(chunk);
      md5.update(chunk);
      if (isRecord) kept.push(chunk);
    }
    hashes.set(entry.path, { sha256: sha256.digest("hex"), md5: md5.digest("hex") });
    if (isRecord) readDpkgRecord(entry.path, Buffer.concat(kept).toString("utf8"), records);
  }
  for (const [path, target] of links) {
    const first = hashes.get(target);
    if (first !== undefined) hashes.set(path, first);
  }
  const files = new Map<string, { sha256: string; package?: string }>();
  for (const [path, { sha256, md5 }] of hashes) {
    const record = records.get(path);
    files.set(path, record !== undefined && record.md5 === md5 ? { sha256, package: record.package } : { sha256 });
  }
  return { description, files };
}

/** dpkg's checksums of package files (info/PKG.md5sums) and of conffiles (status), by path. */
function readDpkgRecord(path: string, content: string, into: Map<string, { md5: string; package: string }>): void {
  const add = (file: string, md5: string, pkg: string): void => {
    into.set(file, { md5, package: pkg });
    if (merged.test(file)) into.set(`/usr${file}`, { md5, package: pkg });
    else if (file.startsWith("/usr/") && merged.test(file.slice(4))) into.set(file.slice(4), { md5, package: pkg });
  };
  const list = md5sumsList.exec(path);
  if (list !== null) {
    const pkg = (list[1] ?? "").replace(/:[^:]+$/, "");
    for (const m of content.matchAll(/^([0-9a-f]{32}) {2}(.+)$/gm)) add(`/${m[2] ?? ""}`, m[1] ?? "", pkg);
    return;
  }
  for (const stanza of content.split(/\n\s*\n/)) {
    const pkg = /^Package: (\S+)$/m.exec(stanza)?.[1];
    if (pkg === undefined) continue;
    for (const m of stanza.matchAll(/^ (\/\S+) ([0-9a-f]{32})(?: obsolete)?$/gm)) add(m[1] ?? "", m[2] ?? "", pkg);
  }
}

/** One JSON document: a version, the description, and [path, sha256, package?] rows. Readable by all, as the base it describes is. */
export async function writeRecordedBase(path: string, base: RecordedBase): Promise<void> {
  const rows = [...base.files].map(([file, { sha256, package: pkg }]) => (pkg === undefined ? [file, sha256] : [file, sha256, pkg]));
  await writeFile(path, `${JSON.stringify({ version: 1, description: base.description, files: rows })}\n`, { mode: 0o644, flag: "wx" });
}

export async function readRecordedBase(path: string): Promise<RecordedBase> {
  const parsed = JSON.parse(await readFile(path, "utf8")) as { version: number; description: string; files: [string, string, string?][] };
  const files = new Map<string, { sha256: string; package?: string }>();
  for (const [file, sha256, pkg] of parsed.files) files.set(file, pkg === undefined ? { sha256 } : { sha256, package: pkg });
  return { description: parsed.description, files };
}
