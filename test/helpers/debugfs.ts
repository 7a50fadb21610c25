import { execFileSync } from "node:child_process";

export interface ImageFileStat {
  mode: number;
  uid: number;
  gid: number;
  type: string;
  size: number;
}

/** Reads one path's inode from an ext4 image with debugfs, without mounting it. */
export function statInImage(image: string, path: string): ImageFileStat | undefined {
  const out = execFileSync("debugfs", ["-R", `stat ${path}`, image], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const head = /Type: (\S+)\s+Mode:\s+(\d+)/.exec(out);
  if (head === null) return undefined;
  return {
    type: head[1] ?? "",
    mode: parseInt(head[2] ?? "0", 8),
    uid: Number(/User:\s+(\d+)/.exec(out)?.[1]),
    gid: Number(/Group:\s+(\d+)/.exec(out)?.[1]),
    size: Number(/Size:\s+(\d+)/.exec(out)?.[1]),
  };
}

/** A file's content from an ext4 image. */
export function catInImage(image: string, path: string): string {
  return execFileSync("debugfs", ["-R", `cat ${path}`, image], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** The names in a directory of an ext4 image. */
export function listInImage(image: string, path: string): string[] {
  const out = execFileSync("debugfs", ["-R", `ls -p ${path}`, image], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return out.split("\n").map((l) => l.split("/")[5]).filter((n): n is string => n !== undefined && n !== "" && n !== "." && n !== "..");
}
