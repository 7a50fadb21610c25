import { readFile } from "node:fs/promises";
import { join } from "node:path";

export interface InstalledPackage {
  name: string;
  version: string;
  architecture: string;
}

/** The packages dpkg records as installed in a tree (none when the tree has no dpkg). */
export async function installedPackages(root: string): Promise<InstalledPackage[]> {
  const status = await readFile(join(root, "var/lib/dpkg/status"), "utf8").catch(() => "");
  const packages: InstalledPackage[] = [];
  for (const stanza of status.split(/\n\n+/)) {
    const field = (name: string): string | undefined => new RegExp(`^${name}: (.*)$`, "m").exec(stanza)?.[1];
    const name = field("Package");
    if (name === undefined || !/ installed$/.test(field("Status") ?? "")) continue;
    packages.push({ name, version: field("Version") ?? "", architecture: field("Architecture") ?? "" });
  }
  return packages.sort((a, b) => a.name.localeCompare(b.name));
}
