import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir, hostname } from "node:os";
import { join } from "node:path";

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
    await mkdir(directory, { recursive: true, mode: 0o700 });
    const start = processStartTime(process.pid);
    const record = { ...fields, pid: process.pid, host: hostname(), ...(start === undefined ? {} : { processStart: start }), startedAt: new Date().toISOString() } as R;
    const journal = new JournalFile(join(directory, `${fields.buildId}.json`), record);
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

/** Every journal in the directory, of any builder, with the file it came from; unreadable ones are skipped. */
export async function readJournalFiles(directory = journalDirectory()): Promise<{ file: string; record: JournalHeader }[]> {
  const names = await readdir(directory).catch(() => [] as string[]);
  const journals: { file: string; record: JournalHeader }[] = [];
  for (const name of names.filter((n) => n.endsWith(".json"))) {
    const file = join(directory, name);
    try {
      const record = JSON.parse(await readFile(file, "utf8")) as JournalHeader;
      if (typeof record.buildId === "string" && typeof record.pid === "number") journals.push({ file, record });
    } catch {
      // a journal being renamed into place, or not kiln's: not ours to judge here
    }
  }
  return journals;
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
