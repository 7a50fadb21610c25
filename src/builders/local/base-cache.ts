import { homedir } from "node:os";
import { join } from "node:path";
import { readFile, writeFile } from "node:fs/promises";
import { sha256Text } from "../../system/sha256.js";

/** Bumped when the way a base is built changes, so old cache entries are not reused. */
const baseFormat = 1;

/** The inputs that determine a mmdebstrap base; their hash is the cache key. */
export interface BaseInputs {
  suite: string;
  variant: string;
  packages: string[];
  components: string[];
  /** The apt lines the base is built from (and keeps in its sources.list). */
  sources: string[];
  architecture: string;
}

/** Written beside each cached base tarball. */
export interface BaseRecord {
  key: string;
  inputs: BaseInputs;
  /** File times in the base are clamped to this; images built from it use it too. */
  sourceDateEpoch: number;
  createdAt: string;
  bytes: number;
}

export function defaultCacheDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KILN_CACHE_DIR) return env.KILN_CACHE_DIR;
  return join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "kiln");
}

export function baseKey(inputs: BaseInputs, sourceDateEpoch: number | undefined): string {
  const canonical = { baseFormat, ...inputs, packages: [...inputs.packages].sort(), sourceDateEpoch: sourceDateEpoch ?? null };
  return `${inputs.suite}-${inputs.variant}-${sha256Text(JSON.stringify(canonical)).slice(0, 16)}`;
}

export function basePaths(cacheDirectory: string, key: string): { tarball: string; record: string } {
  const dir = join(cacheDirectory, "bases");
  return { tarball: join(dir, `${key}.tar`), record: join(dir, `${key}.json`) };
}

export async function readBaseRecord(path: string): Promise<BaseRecord | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as BaseRecord;
  } catch {
    return undefined;
  }
}

export async function writeBaseRecord(path: string, record: BaseRecord): Promise<void> {
  await writeFile(path, `${JSON.stringify(record, null, 2)}\n`);
}
