import { appendRun, inFilesystem, type BlockMapping, type MappingContext, type PhysicalRun } from "./data-runs.js";

const extentMagic = 0xf30a;
const maxDepth = 5;
/** An extent longer than this is uninitialized (preallocated): its length is stored plus 32768. */
const initializedMax = 32768;

/** Maps an extent tree whose root node is the inode's i_block; index and leaf nodes read from the image. */
export async function mapExtentTree(root: Buffer, what: string, context: MappingContext): Promise<BlockMapping> {
  const mapping: BlockMapping = { runs: [], mapBlocks: [] };
  await visitNode(root, undefined, what, context, mapping, new Set());
  sortRuns(mapping.runs);
  return mapping;
}

async function visitNode(node: Buffer, expectedDepth: number | undefined, where: string, context: MappingContext, mapping: BlockMapping, seen: Set<number>): Promise<void> {
  if (node.length < 12 || node.readUInt16LE(0) !== extentMagic) {
    context.problems.note(`${where}: extent node without the extent magic, skipped`);
    return;
  }
  const entries = node.readUInt16LE(2);
  const depth = node.readUInt16LE(6);
  if (12 + entries * 12 > node.length || depth > maxDepth || (expectedDepth !== undefined && depth !== expectedDepth)) {
    context.problems.note(`${where}: extent node with ${entries} entries at depth ${depth} does not fit, skipped`);
    return;
  }
  for (let i = 0; i < entries; i++) {
    const at = 12 + i * 12;
    const logical = node.readUInt32LE(at);
    if (depth === 0) {
      const length = node.readUInt16LE(at + 4);
      const physical = node.readUInt32LE(at + 8) + node.readUInt16LE(at + 6) * 2 ** 32;
      const uninitialized = length > initializedMax;
      const blocks = uninitialized ? length - initializedMax : length;
      if (blocks > 0 && inFilesystem(context, physical, blocks, `${where}, extent at file block ${logical}`)) {
        appendRun(mapping.runs, logical, physical, blocks, uninitialized);
      }
      continue;
    }
    const child = node.readUInt32LE(at + 4) + node.readUInt16LE(at + 8) * 2 ** 32;
    if (!inFilesystem(context, child, 1, `${where}, extent index at file block ${logical}`)) continue;
    if (seen.has(child)) {
      context.problems.note(`${where}: extent node at block ${child} is referenced twice, skipped`);
      continue;
    }
    seen.add(child);
    mapping.mapBlocks.push(child);
    const block = await context.reader.blocks(child, 1);
    await visitNode(block, depth - 1, `${where}, extent node at block ${child}`, context, mapping, seen);
  }
}

/** A sound tree yields runs in order already; a damaged one is put in order rather than trusted. */
export function sortRuns(runs: PhysicalRun[]): void {
  for (let i = 1; i < runs.length; i++) {
    if (runs[i]!.logicalBlock < runs[i - 1]!.logicalBlock) {
      runs.sort((a, b) => a.logicalBlock - b.logicalBlock);
      return;
    }
  }
}
