import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { CommandError } from "../system/command-error.js";

/**
 * Receives a tar stream of one file or directory named `name` and puts it at `localPath`
 * (into it, when it ends in `/`). It is unpacked into a fresh directory beside the destination
 * first, so a failed download never leaves half a file at the destination, and GNU tar refuses
 * members that would land outside it (`..`, absolute names).
 */
export async function receiveTree(name: string, localPath: string, what: string, send: (tarInput: Writable) => Promise<void>): Promise<string> {
  const destination = localPath.endsWith("/") ? join(localPath, name) : localPath;
  await mkdir(dirname(destination), { recursive: true });
  const staging = await mkdtemp(join(dirname(destination), `.kiln-download-${basename(destination)}-`));
  try {
    const tar = spawn("tar", ["-x", "--no-same-owner", "-C", staging], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    tar.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    const done = new Promise<number | null>((resolve) => tar.on("close", resolve));
    tar.stdin.on("error", () => { /* tar failed; its exit code says why */ });
    try {
      await send(tar.stdin);
    } finally {
      tar.stdin.end();
    }
    const code = await done;
    if (code !== 0) throw new CommandError(what, "unpacking the download", code, null, stderr.split("\n").filter(Boolean).slice(-5));
    await rm(destination, { recursive: true, force: true });
    await rename(join(staging, name), destination);
    return destination;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
