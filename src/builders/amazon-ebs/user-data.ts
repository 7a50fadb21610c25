import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";
import { hasOpenSshCapability, type WindowsTarget } from "../../windows/launch-agent.js";

type UserDataOptions = Pick<AmazonEbsBuilderConfig, "user_data" | "user_data_file">;

/** The template brings its own user data (on Windows it then replaces kiln's OpenSSH bootstrap). */
export function hasOwnUserData(builder: UserDataOptions): boolean {
  return builder.user_data !== undefined || builder.user_data_file !== undefined;
}

/** The template's user data, inline or from its file (relative to the template), if any. */
export async function templateUserData(builder: UserDataOptions, templateDirectory: string): Promise<string | undefined> {
  if (builder.user_data !== undefined) return builder.user_data;
  return builder.user_data_file === undefined ? undefined : readFile(resolve(templateDirectory, builder.user_data_file), "utf8");
}

/** kiln's bootstrap would download the Win32-OpenSSH zip, and no hash pins it. */
export function openSshHashMissing(builder: UserDataOptions & Pick<AmazonEbsBuilderConfig, "windows">, target: WindowsTarget): boolean {
  return !hasOwnUserData(builder) && !hasOpenSshCapability(target.version) && builder.windows.openssh_sha256 === undefined;
}
