import { readFile, rm } from "node:fs/promises";
import { KilnError } from "../errors.js";

/** Mount points at or under `directory` in this process's mount namespace. */
export async function mountsUnder(directory: string): Promise<string[]> {
  const table = await readFile("/proc/self/mountinfo", "utf8");
  const prefix = directory.endsWith("/") ? directory : `${directory}/`;
  return table.split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point !== undefined)
    .map((point) => point.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((point) => point === directory || point.startsWith(prefix));
}

/** Removes a directory kiln made, never through a mount a provisioner left in it. */
export async function removeUnlessMounted(directory: string): Promise<void> {
  const mounted = await mountsUnder(directory);
  if (mounted.length > 0) {
    throw new KilnError("KILN_STILL_MOUNTED", `not removing ${directory}: ${mounted.join(", ")} still mounted`, { hint: `umount -R ${mounted[0]}, then rm -rf ${directory}` });
  }
  await rm(directory, { recursive: true, force: true });
}
