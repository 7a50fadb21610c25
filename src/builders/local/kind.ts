import type { BuilderKind } from "../builder-kind.js";
import type { LocalBuilderConfig } from "../../template/schema.js";

/** The local builder: a chroot on this machine, written into a fresh filesystem image. */
export const localKind: BuilderKind<LocalBuilderConfig> = {
  type: "local",
  needsRoot: true,
  files: (b) => [
    ...(b.base.tarball === undefined ? [] : [{ path: ["base", "tarball"], file: b.base.tarball, kind: "file" as const }]),
    ...(b.base.directory === undefined ? [] : [{ path: ["base", "directory"], file: b.base.directory, kind: "directory" as const }]),
  ],
  warnings: () => Promise.resolve([]),
  load: async () => (await import("./runtime.js")).localRuntime,
};
