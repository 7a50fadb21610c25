import { appendRun, inFilesystem, type BlockMapping, type MappingContext } from "./data-runs.js";

const directBlocks = 12;

/** Maps an ext2/3 block map: 12 direct pointers, then single, double and triple indirect blocks; zero is a hole. */
export async function mapIndirectBlocks(area: Buffer, what: string, context: MappingContext): Promise<BlockMapping> {
  const mapping: BlockMapping = { runs: [], mapBlocks: [] };
  for (let i = 0; i < directBlocks; i++) {
    const pointer = area.readUInt32LE(i * 4);
    if (pointer !== 0 && inFilesystem(context, pointer, 1, `${what}, block ${i}`)) appendRun(mapping.runs, i, pointer, 1, false);
  }
  const perBlock = context.reader.blockSize / 4;
  const seen = new Set<number>();
  let logical = directBlocks;
  for (let level = 1; level <= 3; level++) {
    const pointer = area.readUInt32LE((directBlocks + level - 1) * 4);
    if (pointer !== 0) await visitIndirect(pointer, level, logical, what, context, mapping, seen);
    logical += perBlock ** level;
  }
  return mapping;
}

async function visitIndirect(block: number, level: number, firstLogical: number, what: string, context: MappingContext, mapping: BlockMapping, seen: Set<number>): Promise<void> {
  const where = `${what}, indirect block for file block ${firstLogical}`;
  if (!inFilesystem(context, block, 1, where)) return;
  if (seen.has(block)) {
    context.problems.note(`${where}: block ${block} is referenced twice, skipped`);
    return;
  }
  seen.add(block);
  mapping.mapBlocks.push(block);
  const pointers = await context.reader.blocks(block, 1);
  const perBlock = pointers.length / 4;
  const span = perBlock ** (level - 1);
  for (let i = 0; i < perBlock; i++) {
    const pointer = pointers.readUInt32LE(i * 4);
    if (pointer === 0) continue;
    const logical = firstLogical + i * span;
    if (level > 1) await visitIndirect(pointer, level - 1, logical, what, context, mapping, seen);
    else if (inFilesystem(context, pointer, 1, `${what}, block ${logical}`)) appendRun(mapping.runs, logical, pointer, 1, false);
  }
}
