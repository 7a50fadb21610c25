import { readFile } from "node:fs/promises";
import { KilnError, type KilnErrorCode } from "../errors.js";

/**
 * Reads a text file the user named on the command line or in a template; a missing,
 * unreadable or wrong kind of path is one clear error (exit code 2) naming `what` it was.
 */
export async function readUserFile(file: string, what: { code: KilnErrorCode; kind: string; hint: string }): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code === "EACCES" ? "permission denied" : (error as Error).message;
    throw new KilnError(what.code, `cannot read ${what.kind} ${file}: ${reason}`, { exitCode: 2, hint: what.hint });
  }
}
