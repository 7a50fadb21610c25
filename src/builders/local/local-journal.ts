import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { removeUnlessMounted } from "../../system/mounts.js";
import { JournalFile, journalDirectory, type JournalHeader } from "../build-journal.js";

/**
 * A directory a local build makes (mkdtemp-style: `<prefix>-` and a random tail) in `parent`.
 * It is journaled before it is made, by its prefix, since its full name is known only after:
 * so no moment of a build leaves a directory the journal does not name. The prefix carries the
 * build id (which has a random part of its own), so it names this build's directories only.
 */
export interface LocalLeftover {
  type: "work directory" | "partial output";
  parent: string;
  prefix: string;
}

/** The name a build's partial output starts with, beside where its output goes; renamed when published. */
export function partialOutputPrefix(buildId: string): string {
  return `.partial-${buildId}`;
}

export interface LocalJournalRecord extends JournalHeader {
  builder: "local";
  leftovers: LocalLeftover[];
}

/** A local build's journal: what it makes on this machine, for `kiln cleanup` after a SIGKILL. */
export class LocalJournal {
  private constructor(private readonly file: JournalFile<LocalJournalRecord>) {}

  /** Opened before the build makes anything, naming all it will make. */
  static async open(buildId: string, leftovers: LocalLeftover[], directory = journalDirectory()): Promise<LocalJournal> {
    return new LocalJournal(await JournalFile.create<LocalJournalRecord>({ buildId, builder: "local", leftovers }, directory));
  }

  get path(): string {
    return this.file.path;
  }

  /** The build's directories that exist now. */
  existing(): Promise<Leftover[]> {
    return findLeftovers(this.file.record);
  }

  async remove(): Promise<void> {
    await this.file.remove();
  }
}

export interface Leftover {
  type: LocalLeftover["type"];
  path: string;
}

/** Whether a journal read from the state directory is a local build's. */
export function isLocalJournal(record: JournalHeader): record is LocalJournalRecord {
  return record.builder === "local" && Array.isArray((record as Partial<LocalJournalRecord>).leftovers);
}

/**
 * The directories a journal names that exist: real directories (never a link someone put in
 * their place) owned by this user, whose names start with a journaled prefix.
 */
export async function findLeftovers(record: Pick<LocalJournalRecord, "leftovers">): Promise<Leftover[]> {
  const uid = process.geteuid?.() ?? 0;
  const found: Leftover[] = [];
  for (const { type, parent, prefix } of record.leftovers) {
    for (const name of await readdir(parent).catch(() => [] as string[])) {
      if (!name.startsWith(`${prefix}-`)) continue;
      const path = join(parent, name);
      const stats = await lstat(path).catch(() => undefined);
      if (stats?.isDirectory() === true && stats.uid === uid) found.push({ type, path });
    }
  }
  return found;
}

/** Removes one leftover directory, never through a mount a provisioner left. */
export async function removeLeftover({ path }: Leftover): Promise<void> {
  await removeUnlessMounted(path);
}
