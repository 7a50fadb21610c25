import { readFile, stat } from "node:fs/promises";
import { KilnError } from "../../errors.js";
import { resolve } from "node:path";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";
import { hasOpenSshCapability, type WindowsTarget } from "../../windows/launch-agent.js";

type UserDataOptions = Pick<AmazonEbsBuilderConfig, "user_data" | "user_data_file">;

/** The template brings its own user data (on Windows it then replaces kiln's OpenSSH bootstrap). */
export function hasOwnUserData(builder: UserDataOptions): boolean {
  return builder.user_data !== undefined || builder.user_data_file !== undefined;
}

/** EC2 takes at most 16 KB of user data, before its base64 encoding. */
export const userDataLimit = 16 * 1024;

/**
 * The template's user data, inline or from its file (relative to the template), if any, as the
 * bytes the instance gets: a file is sent as it is (gzip, UTF-16 PowerShell), never re-encoded.
 * More than EC2 takes is one clear error before anything is created.
 */
export async function templateUserData(builder: UserDataOptions, templateDirectory: string): Promise<Buffer | undefined> {
  if (builder.user_data !== undefined) return checkedSize(Buffer.from(builder.user_data), "user_data");
  if (builder.user_data_file === undefined) return undefined;
  const file = resolve(templateDirectory, builder.user_data_file);
  const size = (await stat(file)).size;
  if (size > userDataLimit) checkedSize({ length: size }, `user_data_file ${builder.user_data_file}`);
  return checkedSize(await readFile(file), `user_data_file ${builder.user_data_file}`);
}

function checkedSize<T extends { length: number }>(data: T, what: string): T {
  if (data.length <= userDataLimit) return data;
  throw new KilnError("KILN_USAGE", `${what} is ${data.length} bytes; EC2 takes at most ${userDataLimit} bytes of user data`, {
    exitCode: 2, hint: "gzip it (cloud-init reads gzip user data), or fetch the rest from S3 in a short script",
  });
}

/** User data as text to read (for warnings): UTF-16 with its byte-order mark, else UTF-8; gzip is not text. */
export function userDataText(data: Buffer): string | undefined {
  if (data[0] === 0x1f && data[1] === 0x8b) return undefined;
  if (data[0] === 0xff && data[1] === 0xfe) return data.subarray(2).toString("utf16le");
  return data.toString("utf8");
}

/** kiln's bootstrap would download the Win32-OpenSSH zip, and no hash pins it. */
export function openSshHashMissing(builder: UserDataOptions & Pick<AmazonEbsBuilderConfig, "windows">, target: WindowsTarget): boolean {
  return !hasOwnUserData(builder) && !hasOpenSshCapability(target.version) && builder.windows.openssh_sha256 === undefined;
}
