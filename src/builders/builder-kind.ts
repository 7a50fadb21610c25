import type { LoadedTemplate } from "../template/load.js";
import type { BuilderConfig } from "../template/schema.js";
import type { Redactor } from "../report/redact.js";
import type { Reporter } from "../report/reporter.js";
import type { RunBuildOptions } from "../pipeline/run-build.js";
import type { BuilderPlan } from "../plan/plan.js";

/** A file a builder's options name, checked by validate before anything is built. */
export interface NamedFile {
  path: (string | number)[];
  file: string;
  kind: "file" | "directory" | "any";
}

/** The command line's build options; each builder takes those it has a use for. */
export interface BuildOptions {
  cacheDirectory: string;
  workParent: string;
  sourceDateEpoch?: number;
  debugKeysDirectory?: string;
  profile?: string;
  showPassword?: boolean;
}

export interface BuildArgs<C> {
  loaded: LoadedTemplate;
  builder: C;
  label: string;
  buildId: string;
  kilnVersion: string;
  outputDirectory: string;
  options: BuildOptions;
  run: RunBuildOptions;
  report: Reporter;
  redactor: Redactor;
}

/** What a builder does when it builds or plans: loaded only when a command needs it (the AWS SDK is slow to load). */
export interface BuilderRuntime<C> {
  /** Runs the build; returns the line that says what was built. */
  build(args: BuildArgs<C>): Promise<string>;
  plan(loaded: LoadedTemplate, builder: C, label: string, lookups: { probe: boolean; profile?: string | undefined }): Promise<BuilderPlan>;
}

/**
 * One builder type: what validate needs to know of it (cheap, no cloud SDK), and its runtime,
 * loaded on first use. Commands look a builder up here instead of switching on its type.
 */
export interface BuilderKind<C extends BuilderConfig> {
  type: C["type"];
  files(builder: C): NamedFile[];
  /** Warnings validate, plan and build print for this builder, from the template alone. */
  warnings(loaded: LoadedTemplate, builder: C, index: number): Promise<string[]>;
  /** The build must run as root (else kiln rebuilds itself rootless). */
  needsRoot: boolean;
  load(): Promise<BuilderRuntime<C>>;
}
