import { constants } from "node:fs";
import { chmod, link, mkdir, open, rm, symlink, unlink } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { TarTree } from "../audit/sources/tar-tree.js";
import { KilnError } from "../errors.js";
import { leadsOutOf } from "../system/tree-path.js";

/** Told about each entry of a download that was not written, and why. */
export type OnSkipped = (path: string, why: string) => void;

/**
 * Writes the entries of a tar archive that came out of an image under `into`, as data only:
 * regular files (without setuid and setgid), directories, hard links to files of the same copy,
 * and symbolic links that stay inside the copy. Devices, fifos, sockets and links that lead out
 * of the copy (absolute, or climbing above it) are skipped and reported, so nothing downloaded
 * can later make kiln read a file of the build host. Returns the archive's one top-level name.
 */
export async function unpackAsData(archive: string, into: string, what: string, onSkipped: OnSkipped): Promise<string> {
  let top: string | undefined;
  const files = new Set<string>();
  const directories: { path: string; mode: number }[] = [];
  const links: { path: string; target: string }[] = [];
  try {
    for await (const { entry, read } of new TarTree(archive).entries()) {
      const path = entry.path.slice(1);
      if (path === "") continue;
      const first = path.split("/")[0] as string;
      top ??= first;
      if (first !== top) throw refused(what, `the copy holds ${path} beside ${top}, but one file or directory was asked for`);
      const host = join(into, path);
      // No link exists under `into` until the end, so these paths cannot lead out of it.
      if (entry.type === "directory") {
        await mkdir(host, { recursive: true });
        directories.push({ path: host, mode: entry.mode & 0o1777 });
      } else if (entry.type === "file") {
        await mkdir(dirname(host), { recursive: true });
        await unlink(host).catch(() => undefined);
        const file = await open(host, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          for await (const piece of read()) await file.write(piece);
          await file.chmod(entry.mode & 0o1777);
        } finally {
          await file.close();
        }
        files.add(path);
      } else if (entry.type === "symlink") {
        links.push({ path, target: entry.linkTarget ?? "" });
      } else if (entry.linkTarget !== undefined && files.has(entry.linkTarget.slice(1))) {
        await mkdir(dirname(host), { recursive: true });
        await rm(host, { force: true });
        await link(join(into, entry.linkTarget.slice(1)), host);
        files.add(path);
      } else {
        onSkipped(path, entry.linkTarget === undefined ? "not a file, directory or link (a fifo, device or socket): skipped" : `a hard link to ${entry.linkTarget}, not a file of the copy: skipped`);
      }
    }
  } catch (error) {
    if (error instanceof KilnError && error.code.startsWith("KILN_AUDIT_")) throw refused(what, `what came out of the image is not a tar archive kiln can read: ${error.message}`);
    throw error;
  }
  if (top === undefined) throw refused(what, "the copy out of the image is empty");
  await placeLinks(join(into, top), top, links, onSkipped);
  // Deepest first, so a read-only directory is made read-only after its contents were written.
  for (const directory of directories.reverse()) await chmod(directory.path, directory.mode);
  const kept = files.has(top) || directories.some((d) => d.path === join(into, top)) || links.some((l) => l.path === top);
  if (!kept) throw refused(what, `the image's ${top} is not a file or directory (a fifo, device or socket), or a link that leads out of it`);
  return top;
}

/**
 * Links are made last and then judged with every one of them in place, as the kernel would
 * follow them: one that leads out of the copy is removed (a link it passes through only becomes
 * a missing name).
 */
async function placeLinks(root: string, top: string, links: readonly { path: string; target: string }[], onSkipped: OnSkipped): Promise<void> {
  const placed: { path: string; target: string; host: string }[] = [];
  for (const l of links) {
    const host = join(dirname(root), l.path);
    if (l.target === "" || l.target.startsWith("/")) {
      onSkipped(l.path, `a link to ${l.target}, outside the copy: skipped`);
      continue;
    }
    const within = posix.relative(top, l.path);
    // Its directory must be a real one of the copy, not reached through a link made just before.
    if (await leadsOutOf(root, posix.dirname(within))) {
      onSkipped(l.path, "inside a link that leads out of the copy: skipped");
      continue;
    }
    await mkdir(dirname(host), { recursive: true });
    await rm(host, { recursive: true, force: true });
    await symlink(l.target, host);
    placed.push({ ...l, host });
  }
  const out = [];
  for (const l of placed) {
    const within = posix.relative(top, l.path);
    if (within === "" || l.target.startsWith("/") || (await leadsOutOf(root, `${posix.dirname(within)}/${l.target}`))) out.push(l);
  }
  for (const l of out) {
    await unlink(l.host);
    onSkipped(l.path, `a link to ${l.target}, outside the copy: skipped`);
  }
}

function refused(what: string, why: string): KilnError {
  return new KilnError("KILN_DOWNLOAD_REFUSED", `${what}: ${why}`, { hint: "download a regular file or a directory" });
}
