/** One member of a hand-made tar archive: what a hostile base tarball can hold, byte for byte. */
export interface TarMember {
  name: string;
  type: "file" | "hardlink" | "symlink" | "directory";
  linkName?: string;
  mode?: number;
  uid?: number;
  content?: string;
}

const typeFlag = { file: "0", hardlink: "1", symlink: "2", directory: "5" } as const;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

/** A ustar archive of `members` in this order, written as is (no tool normalises the names or links). */
export function ustar(members: readonly TarMember[]): Buffer {
  const blocks: Buffer[] = [];
  for (const member of members) {
    const content = Buffer.from(member.content ?? "");
    const header = Buffer.alloc(512);
    header.write(member.name, 0, 100);
    header.write(octal(member.mode ?? (member.type === "directory" ? 0o755 : 0o644), 8), 100);
    header.write(octal(member.uid ?? 0, 8), 108);
    header.write(octal(member.uid ?? 0, 8), 116);
    header.write(octal(content.length, 12), 124);
    header.write(octal(0, 12), 136);
    header.write("        ", 148);
    header.write(typeFlag[member.type], 156);
    header.write(member.linkName ?? "", 157, 100);
    header.write("ustar\u000000", 257);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    blocks.push(header, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
