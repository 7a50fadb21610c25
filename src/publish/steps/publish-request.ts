import type { EBSClient } from "@aws-sdk/client-ebs";
import type { Baseline } from "../../audit/judging/baseline.js";
import type { Severity } from "../../audit/rules.js";
import type { AwsClients } from "../../builders/amazon-ebs/aws-clients.js";
import type { ImageSettings } from "../../builders/amazon-ebs/image-settings.js";
import type { BuildJournal, JournalRecord } from "../../builders/amazon-ebs/journal.js";
import type { AmazonPublishConfig } from "../../template/schema.js";

/** What a publish starts from: a finished local disk and where it goes. */
export interface PublishRequest {
  amazon: AmazonPublishConfig;
  /** The raw disk: the exact file whose bytes go into the snapshot. */
  disk: { path: string; bytes: number; sha256: string; boots: readonly ("bios" | "uefi")[]; identity?: { dev: number; ino: number } | undefined };
  buildId: string;
  kilnVersion: string;
  gate: {
    failOn: Severity;
    baseline?: Baseline | undefined;
    /** The sha256 of a disk this process audited and passed (the build's own audit): not audited twice. */
    auditedSha256?: string | undefined;
    /** Audit even when the image stays in the account (a disk whose build skipped its audit). */
    always?: boolean | undefined;
  };
  /** A dead publish's journal to go on from (`kiln publish --resume`). */
  resume?: { file: string; record: JournalRecord } | undefined;
  /** The manifest to add the published images to, when there is one. */
  manifestPath?: string | undefined;
}

/** What the first step sets up for the rest. */
export interface PublishAccess {
  aws: AwsClients;
  ebs: EBSClient;
  journal: BuildJournal;
  settings: ImageSettings;
  account: string;
}

/** What `kiln plan` knows of a publish before it runs. */
export interface PublishFacts {
  amazon: AmazonPublishConfig;
  region: string;
  boots: readonly ("bios" | "uefi")[];
}
