import type { FileHandle } from "node:fs/promises";
import { readAt } from "../../system/read-at.js";
import type { Ext4File } from "../../image/ext4/ext4-filesystem.js";
import { judgeAt, type ContentContext, type ContentMatch } from "./content-scanner.js";
import { scanFileContent, type FileScanOptions } from "../candidates/file-content.js";
import type { Finding } from "../finding.js";
import { combinedPattern, longestMatch } from "../candidates/secret-patterns.js";
import type { Walked, WalkedFilesystem } from "../sources/walked-filesystem.js";
import { stockHash } from "./package-files.js";

/**
 * Judges the candidates the raw scan found inside one live file. A file is read whole, as a
 * file, when a line number or the recorded base's checksum can matter, or when a secret may continue in
 * another fragment; a large binary no package installed is judged around each candidate only,
 * so a payload archive of hundreds of megabytes is not read a second time.
 */
export async function judgeInFile(handle: FileHandle, w: Walked, file: Ext4File, offsets: number[], whole: boolean, options: FileScanOptions): Promise<Finding[]> {
  const path = file.entry.path;
  const nearRunEnd = offsets.some((offset) => {
    const block = Math.floor((offset - w.volume.offset) / w.fs.blockSize);
    const run = file.extents.find((r) => block >= r.physicalBlock && block < r.physicalBlock + r.blocks);
    return run === undefined || w.volume.offset + (run.physicalBlock + run.blocks) * w.fs.blockSize - offset < inPlaceWindow;
  });
  let head = Buffer.alloc(0);
  for await (const chunk of w.fs.read(file, 8000)) head = Buffer.concat([head, chunk]);
  const binary = head.includes(0);
  if (whole || nearRunEnd || file.entry.size <= 4 * 1024 * 1024 || !binary || w.packages.has(path)) {
    // Judged in place first with the most permissive file context: nothing there, nothing to read.
    if (!whole && !nearRunEnd && !(await anyInPlace(handle, w, offsets, "config"))) return [];
    // A sparse file is read by its data (holes as one zero byte); its checksum is then no stock one's.
    const sparse = file.extents.reduce((n, r) => n + r.blocks, 0) * w.fs.blockSize < file.entry.size;
    const scan = await scanFileContent(path, w.fs.read(file, Number.POSITIVE_INFINITY, sparse), options);
    return [...w.judge([{ path, scan }]), ...scan.gaps];
  }
  const findings: Finding[] = [];
  for (const offset of offsets) {
    for (const m of await inPlace(handle, w, offset, "binary")) {
      findings.push({ rule: m.rule, severity: m.severity, message: m.message, excerpt: m.excerpt, location: { kind: "file", path } });
    }
  }
  return findings;
}

async function inPlace(handle: FileHandle, w: Walked, offset: number, context: ContentContext): Promise<ContentMatch[]> {
  const before = Math.min(offset - w.volume.offset, 2048);
  const window = Buffer.alloc(before + inPlaceWindow);
  const bytesRead = readAt(handle, window, offset - before);
  return judgeAt(window.subarray(0, bytesRead).toString("latin1"), before, context);
}

async function anyInPlace(handle: FileHandle, w: Walked, offsets: number[], context: ContentContext): Promise<boolean> {
  for (const offset of offsets) if ((await inPlace(handle, w, offset, context)).length > 0) return true;
  return false;
}

const inPlaceWindow = 16 * 1024;

export async function stockHashOf(chunks: AsyncIterable<Buffer>): Promise<string> {
  const hash = stockHash();
  for await (const chunk of chunks) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * Files whose blocks are not contiguous: a secret split across two fragments is in no single
 * run of bytes the raw scan read, so each seam is checked and such files are scanned as files.
 */
export async function straddlingSeams(handle: FileHandle, w: WalkedFilesystem): Promise<Ext4File[]> {
  const pattern = combinedPattern("g");
  const found: Ext4File[] = [];
  const side = Buffer.alloc(longestMatch);
  for (const file of w.files.values()) {
    const runs = [...file.extents].sort((a, b) => a.logicalBlock - b.logicalBlock);
    for (let i = 1; i < runs.length; i++) {
      const [prev, next] = [runs[i - 1], runs[i]];
      if (prev === undefined || next === undefined || prev.logicalBlock + prev.blocks !== next.logicalBlock || prev.physicalBlock + prev.blocks === next.physicalBlock) continue;
      const seam = (prev.physicalBlock + prev.blocks) * w.fs.blockSize + w.volume.offset;
      readAt(handle, side, seam - longestMatch);
      const left = side.toString("latin1");
      readAt(handle, side, next.physicalBlock * w.fs.blockSize + w.volume.offset);
      const text = left + side.toString("latin1");
      if ([...text.matchAll(pattern)].some((m) => m.index < longestMatch && m.index + m[0].length > longestMatch)) {
        found.push(file);
        break;
      }
    }
  }
  return found;
}
