import type { ImageReader } from "./image-reader.js";
import type { ProblemSink } from "./problem-log.js";

/** Blocks `logicalBlock…+blocks` of a file are stored at `physicalBlock…`; uninitialized ones read as zeros. */
export interface PhysicalRun {
  logicalBlock: number;
  physicalBlock: number;
  blocks: number;
  uninitialized?: boolean;
}

/** A file's data runs in file order, and the blocks its map itself occupies (extent nodes, indirect blocks). */
export interface BlockMapping {
  runs: PhysicalRun[];
  mapBlocks: number[];
}

export interface MappingContext {
  reader: ImageReader;
  blocksCount: number;
  firstDataBlock: number;
  problems: ProblemSink;
}

/** Appends a run, merging it into the previous one when both logical and physical blocks continue it. */
export function appendRun(runs: PhysicalRun[], logicalBlock: number, physicalBlock: number, blocks: number, uninitialized: boolean): void {
  const last = runs.at(-1);
  if (last !== undefined && (last.uninitialized ?? false) === uninitialized
    && last.logicalBlock + last.blocks === logicalBlock && last.physicalBlock + last.blocks === physicalBlock) {
    last.blocks += blocks;
    return;
  }
  runs.push(uninitialized ? { logicalBlock, physicalBlock, blocks, uninitialized } : { logicalBlock, physicalBlock, blocks });
}

/** Whether blocks `start…+count` lie inside the filesystem's data area; notes a problem when not. */
export function inFilesystem(context: MappingContext, start: number, count: number, what: string): boolean {
  if (start >= context.firstDataBlock && count > 0 && start + count <= context.blocksCount) return true;
  context.problems.note(`${what} points at blocks ${start}…${start + count - 1}, outside the filesystem`);
  return false;
}
