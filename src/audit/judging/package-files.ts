import { createHash, type Hash } from "node:crypto";
import { knownTestKeyFiles } from "./known-test-keys.js";
import type { RecordedBase } from "./recorded-base.js";

/** The hash a file is compared with its recorded base by. */
export function stockHash(): Hash {
  return createHash("sha256");
}

/**
 * Files a Debian package installed in the base kiln recorded before provisioning. A candidate
 * secret in such a file, byte for byte as recorded, is public (a stock library's self-test
 * key, a sample config's example password): it is still reported, at info, with its package.
 * The image's own dpkg records are never consulted: a provisioner or the image itself could
 * append a line to a .md5sums file and exempt any file it likes. With no recorded base
 * (`kiln audit` of an image from elsewhere), nothing is exempt.
 */
export class StockFiles {
  constructor(private readonly base?: RecordedBase) {}

  /** Whether the recorded base had a package's file at `path` (so its checksum decides). */
  has(path: string): boolean {
    return this.base?.files.get(path)?.package !== undefined;
  }

  /** Why this file is exempt: its package in the recorded base, or a pinned upstream file; else undefined. */
  exemption(path: string, sha256: string): string | undefined {
    const recorded = this.base?.files.get(path);
    if (recorded?.package !== undefined && recorded.sha256 === sha256) return `unchanged (sha256) from package ${recorded.package} in the base kiln recorded before provisioning`;
    const known = knownTestKeyFiles.get(sha256);
    return known === undefined ? undefined : `a known upstream file with public test keys, pinned by sha256: ${known}`;
  }

  /** What exemptions rest on, for the report. */
  describe(): string {
    if (this.base === undefined) return "no recorded base: no file is exempt as a packaged stock file (the image's own dpkg records are not trusted); only upstream files pinned by sha256 are";
    const stock = [...this.base.files.values()].filter((f) => f.package !== undefined).length;
    return `findings in ${stock} packaged files of the recorded base (${this.base.description}), unchanged by sha256, are listed at info`;
  }
}
