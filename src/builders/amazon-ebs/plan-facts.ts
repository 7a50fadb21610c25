import type { LoadedTemplate } from "../../template/load.js";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";

/**
 * What `kiln plan` knows of an amazon-ebs build before anything runs: the template, and what
 * the read-only lookups found (or the template's values where they were not made). Each step's
 * `plan` reads these.
 */
export interface AmazonEbsFacts {
  loaded: LoadedTemplate;
  builder: AmazonEbsBuilderConfig;
  /** `<label>-<time>-<random>`: the build id's shape. */
  buildId: string;
  region: string;
  /** The source image found, or how it would be found. */
  source: string;
  /** Which Windows and launch agent, or why the build would stop. */
  windows?: string;
  /** The user data the instance gets, described (never its text). */
  userData: string;
  /** Where SSH connects and from where the group lets it in. */
  ssh: { address: string; cidrs: string };
  /** The AMI name's check in every region, when the lookups were made. */
  imageName: string;
  /** The tags every resource of the build gets, with extras. */
  tags(extra?: Record<string, string>): Record<string, string>;
}
