import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { type OnSkipped, unpackAsData } from "./unpack-as-data.js";

/**
 * Receives a tar stream of one file or directory named `name` and puts it at `localPath`
 * (into it, when it ends in `/`). The stream comes from the image, so kiln unpacks it itself,
 * as data (see unpackAsData), into a fresh private directory beside the destination: a failed
 * download never leaves half a file at the destination, and no member lands outside it.
 */
export async function receiveTree(name: string, localPath: string, what: string, send: (tarInput: Writable) => Promise<void>, onSkipped: OnSkipped = () => undefined): Promise<string> {
  const destination = localPath.endsWith("/") ? join(localPath, name) : localPath;
  await mkdir(dirname(destination), { recursive: true });
  const staging = await mkdtemp(join(dirname(destination), `.kiln-download-${basename(destination)}-`));
  try {
    const archive = join(staging, "archive.tar");
    const file = createWriteStream(archive, { flags: "wx", mode: 0o600 });
    try {
      await send(file);
    } finally {
      file.end();
      await finished(file).catch(() => undefined);
    }
    if (file.errored !== null) throw file.errored;
    const tree = join(staging, "tree");
    await mkdir(tree, { mode: 0o700 });
    const top = await unpackAsData(archive, tree, what, onSkipped);
    await rm(archive);
    await rm(destination, { recursive: true, force: true });
    await rename(join(tree, top), destination);
    return destination;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
