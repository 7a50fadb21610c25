import { readFile } from "node:fs/promises";

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
