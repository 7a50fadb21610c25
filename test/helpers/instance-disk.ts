import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * A small ext4 disk as a build instance's volume might hold it, as 512 KiB blocks (the stand-in's
 * `ebs.instanceDisk`): made fresh by mke2fs, and with `secret` written into free blocks when given
 * (what a build deleted, still on the volume: seed 004's risk).
 */
export async function instanceDisk(dir: string, name: string, secret?: Buffer): Promise<{ volumeGiB: number; blocks: Map<number, Buffer> }> {
  const file = join(dir, `${name}.ext4`);
  execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", "-L", "root", file, "32M"], { stdio: "ignore" });
  const image = await readFile(file);
  // Block 6000 of 8192 (4 KiB each) is far past what mke2fs uses on a fresh 32 MiB filesystem.
  secret?.copy(image, 6000 * 4096);
  const blocks = new Map<number, Buffer>();
  for (let i = 0; i * 524_288 < image.length; i++) {
    const block = Buffer.alloc(524_288);
    image.copy(block, 0, i * 524_288, (i + 1) * 524_288);
    if (block.some((b) => b !== 0)) blocks.set(i, block);
  }
  return { volumeGiB: 1, blocks };
}
