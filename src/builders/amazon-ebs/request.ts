import type { LoadedTemplate } from "../../template/load.js";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";

/** What an amazon-ebs build starts from: the validated template and where its manifest goes. */
export interface AmazonEbsBuildRequest {
  loaded: LoadedTemplate;
  builder: AmazonEbsBuilderConfig;
  /** The manifest's directory, `output/<name>-<timestamp>`; created by the build. */
  outputDirectory: string;
  buildId: string;
  kilnVersion: string;
  /** `--debug-keys DIR`: the temporary private key is written there (0600); otherwise never. */
  debugKeysDirectory?: string;
  /**
   * Secrets learned during the build (a Windows password): registered so no output shows
   * them; `reveal` (--show-password) writes one to the terminal, outside every log.
   */
  secrets?: { addSecret(value: string): void; reveal?: (text: string) => void };
}
