import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir, hostname } from "node:os";
import { join } from "node:path";

/** A cloud resource a build created, as the journal records it. */
export interface JournalEntry {
  type: "instance" | "volume" | "security-group" | "key-pair" | "instance-profile" | "role" | "image" | "snapshot";
  id: string;
  /** Temporary resources are always removed; the image and its snapshots are kept when the build succeeds. */
  temporary: boolean;
  /** When its create call returned: for a while after, EC2 and IAM may not list it yet. */
  createdAt?: string;
  /** Where it is, when not in the build's region (a copy of the image, and its snapshots). */
  region?: string;
}

export interface JournalRecord {
  buildId: string;
  pid: number;
  /** Where the build runs, and when its process started: a pid alone can be reused. */
  host?: string;
  processStart?: string;
  region: string;
  endpoint?: string;
  profile?: string;
  startedAt: string;
  resources: JournalEntry[];
}

/** `$XDG_STATE_HOME/kiln/builds` (else ~/.local/state/kiln/builds), or KILN_STATE_DIR. */
export function journalDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KILN_STATE_DIR !== undefined && env.KILN_STATE_DIR !== "") return join(env.KILN_STATE_DIR, "builds");
  const state = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== "" ? env.XDG_STATE_HOME : join(homedir(), ".local", "state");
  return join(state, "kiln", "builds");
}

/**
 * What a running build has created, on disk before the build goes on: a build killed with
 * SIGKILL leaves its journal, and `kiln cleanup` removes what it names. Written whole to a
 * temporary file and renamed, so a crash never leaves half a journal.
 */
export class BuildJournal {
  private constructor(private readonly file: string, private readonly entries: JournalRecord) {}

  static async start(record: Omit<JournalRecord, "resources" | "pid" | "startedAt" | "host" | "processStart">, directory = journalDirectory()): Promise<BuildJournal> {
    await mkdir(directory, { recursive: true, mode: 0o700 });
    const start = processStartTime(process.pid);
    const journal = new BuildJournal(join(directory, `${record.buildId}.json`), {
      ...record, pid: process.pid, host: hostname(), ...(start === undefined ? {} : { processStart: start }), startedAt: new Date().toISOString(), resources: [],
    });
    await journal.save();
    return journal;
  }

  get path(): string {
    return this.file;
  }

  async record(entry: JournalEntry): Promise<void> {
    this.entries.resources.push(entry);
    await this.save();
  }

  async forget(type: JournalEntry["type"], id: string): Promise<void> {
    this.entries.resources = this.entries.resources.filter((r) => !(r.type === type && r.id === id));
    await this.save();
  }

  /** Whether a resource is still recorded (not yet removed by an undo that took it along). */
  holds(type: JournalEntry["type"], id: string): boolean {
    return this.entries.resources.some((r) => r.type === type && r.id === id);
  }

  /** What is still recorded and not yet removed (the image and its snapshots stay until `kept`). */
  remaining(): JournalEntry[] {
    return [...this.entries.resources];
  }

  /** The build succeeded: its image (with its snapshots) is the artifact, no longer a leftover. */
  async kept(): Promise<void> {
    this.entries.resources = this.entries.resources.filter((r) => r.temporary);
    await this.save();
  }

  async remove(): Promise<void> {
    await rm(this.file, { force: true });
  }

  private async save(): Promise<void> {
    const temporary = `${this.file}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(this.entries, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, this.file);
  }
}

/** Every journal in the directory, with the file it came from; unreadable ones are skipped. */
export async function readJournals(directory = journalDirectory()): Promise<{ file: string; record: JournalRecord }[]> {
  const names = await readdir(directory).catch(() => [] as string[]);
  const journals: { file: string; record: JournalRecord }[] = [];
  for (const name of names.filter((n) => n.endsWith(".json"))) {
    const file = join(directory, name);
    try {
      journals.push({ file, record: JSON.parse(await readFile(file, "utf8")) as JournalRecord });
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
export function buildState(record: Pick<JournalRecord, "pid" | "host" | "processStart">): "running" | "gone" | "elsewhere" {
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
