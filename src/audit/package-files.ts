import type { TreeEntry } from "./image-tree.js";

const md5sumsList = /^\/var\/lib\/dpkg\/info\/[^/]+\.md5sums$/;
const status = "/var/lib/dpkg/status";
// usrmerge: a package may list lib/… while the file lives at /usr/lib/… (and the other way).
const merged = /^\/(?:bin|sbin|lib|lib32|lib64|libx32)\//;

/**
 * The checksums Debian packages record for the files they install (info/*.md5sums) and for
 * their configuration files (status, Conffiles). A candidate secret in a file that still has
 * its package's checksum is public: a stock library's self-test key, a sample config's example
 * password. Anything changed or added after installation is judged as found.
 */
export class PackageFiles {
  private readonly sums = new Map<string, string>();

  /** Bytes of the entry's content this database reads; undefined when it is not dpkg's. */
  wants(entry: TreeEntry): number | undefined {
    return entry.type === "file" && (md5sumsList.test(entry.path) || entry.path === status) ? 64 * 1024 * 1024 : undefined;
  }

  visit(entry: TreeEntry, content: string): void {
    if (entry.path === status) {
      for (const m of content.matchAll(/^ (\/\S+) ([0-9a-f]{32})(?: obsolete)?$/gm)) this.add(m[1] ?? "", m[2] ?? "");
      return;
    }
    for (const m of content.matchAll(/^([0-9a-f]{32}) {2}(.+)$/gm)) this.add(`/${m[2] ?? ""}`, m[1] ?? "");
  }

  /** Whether the file at `path` with this MD5 is exactly what its package installed. */
  isStock(path: string, md5: string): boolean {
    return this.sums.get(path) === md5;
  }

  /** Whether a package installed a file at `path` (so its checksum decides). */
  has(path: string): boolean {
    return this.sums.has(path);
  }

  get size(): number {
    return this.sums.size;
  }

  private add(path: string, md5: string): void {
    this.sums.set(path, md5);
    if (merged.test(path)) this.sums.set(`/usr${path}`, md5);
    else if (path.startsWith("/usr/") && merged.test(path.slice(4))) this.sums.set(path.slice(4), md5);
  }
}
