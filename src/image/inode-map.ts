/**
 * The inodes in use in an ext4 image, read from `dumpe2fs` output: every inode of each group
 * minus that group's "Free inodes" ranges.
 */
export function usedInodes(dumpe2fsOutput: string): number[] {
  const perGroup = Number(/^Inodes per group:\s+(\d+)/m.exec(dumpe2fsOutput)?.[1]);
  if (!Number.isInteger(perGroup) || perGroup <= 0) throw new Error("dumpe2fs output has no 'Inodes per group'");
  const used: number[] = [];
  const groups = dumpe2fsOutput.split(/^Group (\d+):/m);
  for (let i = 1; i + 1 < groups.length; i += 2) {
    const group = Number(groups[i]);
    const body = groups[i + 1] ?? "";
    const free = new Set<number>();
    const list = /^\s+Free inodes:\s*(.*)$/m.exec(body)?.[1] ?? "";
    for (const range of list.split(",").map((r) => r.trim()).filter(Boolean)) {
      const [from, to] = range.split("-").map(Number);
      for (let n = from ?? 0; n <= (to ?? from ?? 0); n++) free.add(n);
    }
    const first = group * perGroup + 1;
    for (let n = first; n < first + perGroup; n++) if (!free.has(n)) used.push(n);
  }
  return used;
}
