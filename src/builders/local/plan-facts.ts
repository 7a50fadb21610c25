import type { LoadedTemplate } from "../../template/load.js";
import type { LocalBuilderConfig } from "../../template/schema.js";

/** What `kiln plan` knows of a local build before it runs: the template. */
export interface LocalFacts {
  loaded: LoadedTemplate;
  builder: LocalBuilderConfig;
}
