import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024, ...(signal === undefined ? {} : { signal }) })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest("hex");
}

export function sha256Text(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** A file's sha256, computed in the background from when the file is final until someone needs it. */
export interface PendingDigest {
  readonly value: () => Promise<string>;
}

/**
 * Starts hashing `path` now (the file must not change any more): a build hashes its disk image
 * while it audits and converts it, instead of reading it again at the end.
 */
export function startSha256(path: string, signal?: AbortSignal): PendingDigest {
  const running = sha256File(path, signal);
  // Awaited by whoever needs it; a build that fails first must not see this as unhandled.
  running.catch(() => undefined);
  return { value: () => running };
}
