import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { findTool } from "../../system/host-tools.js";

export type XattrMap = Map<string, { name: string; value: Buffer }[]>;

/**
 * Every extended attribute under `root` (every namespace the caller may read: as root, trusted.
 * too), by absolute path on disk, from one `getfattr -R` run: Node has no xattr call.
 * Undefined when getfattr is missing (Debian package attr).
 */
export async function directoryXattrs(root: string, signal?: AbortSignal): Promise<XattrMap | undefined> {
  const getfattr = await findTool("getfattr");
  if (getfattr === undefined) return undefined;
  const child = spawn(getfattr, ["-R", "-P", "-d", "-m", "-", "-e", "base64", "--absolute-names", "--", root], { stdio: ["ignore", "pipe", "ignore"], ...(signal === undefined ? {} : { signal }) });
  const map: XattrMap = new Map();
  let file: string | undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    if (line.startsWith("# file: ")) file = unescape(line.slice(8));
    else if (file !== undefined && line.includes("=")) {
      const at = line.indexOf("=");
      const raw = line.slice(at + 1);
      const value = raw.startsWith("0s") ? Buffer.from(raw.slice(2), "base64") : raw.startsWith("0x") ? Buffer.from(raw.slice(2), "hex") : Buffer.from(raw.replace(/^"|"$/g, ""), "latin1");
      map.set(file, [...(map.get(file) ?? []), { name: unescape(line.slice(0, at)), value }]);
    }
  }
  await new Promise((resolve) => (child.exitCode === null ? child.once("close", resolve) : resolve(undefined)));
  return map;
}

/** getfattr writes unusual bytes of names as octal escapes (\012). */
function unescape(text: string): string {
  return Buffer.from(text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))), "latin1").toString("utf8");
}
