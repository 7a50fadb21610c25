import { JournalFile, journalDirectory, readJournalFiles, type JournalHeader } from "../build-journal.js";

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

/** A publish's upload in progress: what `kiln publish --resume` needs to go on where it stopped. */
export interface UploadRecord {
  /** The disk file, by path and by content. */
  disk: string;
  sha256: string;
  snapshotId: string;
  /** Blocks put so far, as ranges "a-b" and single indexes, comma-separated. */
  done: string;
}

export interface JournalRecord extends JournalHeader {
  region: string;
  upload?: UploadRecord;
  endpoint?: string;
  profile?: string;
  resources: JournalEntry[];
}

/**
 * What a running build has created, on disk before the build goes on: a build killed with
 * SIGKILL leaves its journal, and `kiln cleanup` removes what it names.
 */
export class BuildJournal {
  private constructor(private readonly file: JournalFile<JournalRecord>) {}

  static async start(record: Pick<JournalRecord, "buildId" | "region" | "endpoint" | "profile">, directory = journalDirectory(), builder: "amazon-ebs" | "publish" = "amazon-ebs"): Promise<BuildJournal> {
    return new BuildJournal(await JournalFile.create<JournalRecord>({ ...record, builder, resources: [] }, directory));
  }

  /** A dead publish's journal, taken over by the process that resumes it. */
  static async adopt(file: string, record: JournalRecord): Promise<BuildJournal> {
    return new BuildJournal(await JournalFile.adopt(file, record));
  }

  get upload(): UploadRecord | undefined {
    return this.file.record.upload;
  }

  async recordUpload(upload: UploadRecord | undefined): Promise<void> {
    if (upload === undefined) delete this.file.record.upload;
    else this.file.record.upload = upload;
    await this.file.save();
  }

  get path(): string {
    return this.file.path;
  }

  async record(entry: JournalEntry): Promise<void> {
    this.file.record.resources.push(entry);
    await this.file.save();
  }

  async forget(type: JournalEntry["type"], id: string): Promise<void> {
    this.file.record.resources = this.file.record.resources.filter((r) => !(r.type === type && r.id === id));
    await this.file.save();
  }

  /** Whether a resource is still recorded (not yet removed by an undo that took it along). */
  holds(type: JournalEntry["type"], id: string): boolean {
    return this.file.record.resources.some((r) => r.type === type && r.id === id);
  }

  /** What is still recorded and not yet removed (the image and its snapshots stay until `kept`). */
  remaining(): JournalEntry[] {
    return [...this.file.record.resources];
  }

  /** The build succeeded: its image (with its snapshots) is the artifact, no longer a leftover. */
  async kept(): Promise<void> {
    this.file.record.resources = this.file.record.resources.filter((r) => r.temporary);
    await this.file.save();
  }

  async remove(): Promise<void> {
    await this.file.remove();
  }
}

/** Whether a journal read from the state directory is an amazon-ebs build's (older ones name no builder). */
export function isAmazonEbsJournal(record: JournalHeader): record is JournalRecord {
  return (record.builder === undefined || record.builder === "amazon-ebs" || record.builder === "publish") && Array.isArray((record as Partial<JournalRecord>).resources);
}

/** The journals of amazon-ebs builds in the directory. */
export async function readJournals(directory = journalDirectory()): Promise<{ file: string; record: JournalRecord }[]> {
  return (await readJournalFiles(directory)).filter((j): j is { file: string; record: JournalRecord } => isAmazonEbsJournal(j.record));
}
