import { readTreeFile } from "../../system/tree-path.js";

export interface InstalledPackage {
  name: string;
  version: string;
  architecture: string;
}

/**
 * The packages dpkg records as installed in a tree (none when the tree has no dpkg). The file is
 * the image's, so it is read as data: resolved inside the tree, and refused unless it is a
 * regular file (a fifo there would hang the build).
 */
export async function installedPackages(root: string): Promise<InstalledPackage[]> {
  const status = (await readTreeFile(root, "/var/lib/dpkg/status")) ?? "";
  const packages: InstalledPackage[] = [];
  for (const stanza of status.split(/\n\n+/)) {
    const field = (name: string): string | undefined => new RegExp(`^${name}: (.*)$`, "m").exec(stanza)?.[1];
    const name = field("Package");
    if (name === undefined || !/ installed$/.test(field("Status") ?? "")) continue;
    packages.push({ name, version: field("Version") ?? "", architecture: field("Architecture") ?? "" });
  }
  return packages.sort((a, b) => a.name.localeCompare(b.name));
}
