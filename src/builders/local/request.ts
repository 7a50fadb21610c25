import type { LocalBuilderConfig } from "../../template/schema.js";
import type { LoadedTemplate } from "../../template/load.js";

/** What a local build starts from: the validated template and where things go on this machine. */
export interface LocalBuildRequest {
  loaded: LoadedTemplate;
  builder: LocalBuilderConfig;
  /** Base root filesystems are cached here, keyed by their inputs. */
  cacheDirectory: string;
  /** The build's work directory is created inside this one. */
  workParent: string;
  /** The artifact directory, `output/<name>-<timestamp>`; created by the build. */
  outputDirectory: string;
  buildId: string;
  kilnVersion: string;
  /** From the SOURCE_DATE_EPOCH environment variable, if set. */
  sourceDateEpoch?: number;
}

/** The epoch the user asked for: the template's, else SOURCE_DATE_EPOCH. */
export function requestedEpoch(request: LocalBuildRequest): number | undefined {
  return request.builder.source_date_epoch ?? request.sourceDateEpoch;
}
