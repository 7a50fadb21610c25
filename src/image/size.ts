import { KilnError } from "../errors.js";
import type { TreeUsage } from "./tree-times.js";

const mib = 1024 * 1024;
const units: Record<string, number> = { K: 1024, M: mib, G: 1024 * mib, T: 1024 * 1024 * mib };

/** Parses `2G`, `512M`, `1.5GiB` or a byte count. */
export function parseSize(size: string | number): number {
  if (typeof size === "number") return size;
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT])(?:i?B)?$/i.exec(size.trim());
  if (match?.[1] === undefined || match[2] === undefined) throw new KilnError("KILN_SIZE", `cannot read size ${JSON.stringify(size)}`, { hint: "write it like 2G or 512M" });
  return Math.round(Number(match[1]) * (units[match[2].toUpperCase()] ?? 1));
}

/**
 * The filesystem size for a tree: its content plus a fifth for ext4 metadata and growth, plus
 * room for the journal and inode tables, in whole 4 MiB units.
 */
export function imageBytes(size: string | number, usage: TreeUsage): number {
  if (size !== "auto") {
    const bytes = parseSize(size);
    return Math.ceil(bytes / 4096) * 4096;
  }
  const wanted = usage.bytes * 1.2 + usage.entries * 512 + 96 * mib;
  return Math.ceil(wanted / (4 * mib)) * 4 * mib;
}
