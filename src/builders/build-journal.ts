import { readFileSync } from "node:fs";
import { lstat, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir, hostname } from "node:os";
import { join } from "node:path";
import { KilnError } from "../errors.js";
import { ensureSafeDirectory, isOwnFile } from "../system/private-directory.js";

/**
 * What every build's journal starts with, whatever its builder: which build, and the process
 * that writes it, so `kiln cleanup --stale` can tell a dead build from a running one.
 */
export interface JournalHeader {
  buildId: string;
  /** The builder that wrote it; absent in the journals of amazon-ebs builds, the first to have one. */
  builder?: string;
  pid: number;
  /** Where the build runs, and when its process started: a pid alone can be reused. */
  host?: string;
  processStart?: string;
  startedAt: string;
}

type Identity = "pid" | "host" | "processStart" | "startedAt";

/** `$XDG_STATE_HOME/kiln/builds` (else ~/.local/state/kiln/builds), or KILN_STATE_DIR. */
export function journalDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KILN_STATE_DIR !== undefined && env.KILN_STATE_DIR !== "") return join(env.KILN_STATE_DIR, "builds");
  const state = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== "" ? env.XDG_STATE_HOME : join(homedir(), ".local", "state");
  return join(state, "kiln", "builds");
}

/**
 * A journal on disk, `<directory>/<build id>.json`: written whole to a temporary file and
 * renamed on every change, so a build killed at any moment leaves the last complete one.
 */
export class JournalFile<R extends JournalHeader> {
  private constructor(readonly path: string, readonly record: R) {}

  /** Opens the journal of this process's build, stamped with its pid, host and start time. */
  static async create<R extends JournalHeader>(fields: Omit<R, Identity>, directory = journalDirectory()): Promise<JournalFile<R>> {
    // Another user who can write here can plant a journal that cleanup acts on as us.
    await safeJournalDirectory(directory);
    const start = processStartTime(process.pid);
    const record = { ...fields, pid: process.pid, host: hostname(), ...(start === undefined ? {} : { processStart: start }), startedAt: new Date().toISOString() } as R;
    const journal = new JournalFile(join(directory, `${fields.buildId}.json`), record);
    await journal.save();
    return journal;
  }

  /** Takes over a dead build's journal: this process's identity, the rest as it was. */
  static async adopt<R extends JournalHeader>(path: string, record: R): Promise<JournalFile<R>> {
    const start = processStartTime(process.pid);
    const journal = new JournalFile(path, { ...record, pid: process.pid, host: hostname(), ...(start === undefined ? {} : { processStart: start }) });
    await journal.save();
    return journal;
  }

  async save(): Promise<void> {
    const temporary = `${this.path}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(this.record, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, this.path);
  }

  async remove(): Promise<void> {
    await rm(this.path, { force: true });
  }
}

/**
 * Every journal in the directory, of any builder, with the file it came from; unreadable ones are
 * skipped. A journal tells cleanup what to remove, as us: a directory or a journal another user
 * could have written is refused (KILN_UNSAFE_DIRECTORY), never acted upon.
 */
export async function readJournalFiles(directory = journalDirectory()): Promise<{ file: string; record: JournalHeader }[]> {
  if (await lstat(directory).then(() => false, () => true)) return [];
  await safeJournalDirectory(directory);
  const names = await readdir(directory).catch(() => [] as string[]);
  const journals: { file: string; record: JournalHeader }[] = [];
  for (const name of names.filter((n) => n.endsWith(".json"))) {
    const file = join(directory, name);
    if (!(await isOwnFile(file))) continue;
    try {
      const record = JSON.parse(await readFile(file, "utf8")) as JournalHeader;
      if (typeof record.buildId === "string" && typeof record.pid === "number") journals.push({ file, record });
    } catch {
      // a journal being renamed into place, or not kiln's: not ours to judge here
    }
  }
  return journals;
}

/** The journal directory, checked as a build's work directory is: ours or root's, no one else can write to it. */
async function safeJournalDirectory(directory: string): Promise<void> {
  await ensureSafeDirectory(directory).catch((error: unknown) => {
    if (!(error instanceof KilnError) || error.code !== "KILN_UNSAFE_DIRECTORY") throw error;
    throw new KilnError("KILN_UNSAFE_DIRECTORY", `${error.message.replace(/^refusing to build in/, "refusing to use")} (it holds build journals, which kiln cleanup acts on)`, {
      hint: `set KILN_STATE_DIR (or XDG_STATE_HOME) to a directory only root or uid ${process.geteuid?.() ?? 0} can change, or fix this one with chown and chmod 0700`,
    });
  });
}

/** When a process started, in clock ticks since boot (Linux /proc), or undefined. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces and parentheses); starttime is field 22.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/**
 * Whether the build that wrote a journal still runs: `running` (its process, the same one, is
 * alive here), `gone`, or `elsewhere` (started on another host: this machine cannot tell).
 */
export function buildState(record: Pick<JournalHeader, "pid" | "host" | "processStart">): "running" | "gone" | "elsewhere" {
  if (record.host !== undefined && record.host !== hostname()) return "elsewhere";
  try {
    process.kill(record.pid, 0); // signal 0: tests, sends nothing
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return "gone";
  }
  // Alive, but maybe another process that got the same pid since.
  const start = processStartTime(record.pid);
  return record.processStart !== undefined && start !== undefined && start !== record.processStart ? "gone" : "running";
}
