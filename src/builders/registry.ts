import type { BuilderConfig } from "../template/schema.js";
import type { BuilderKind } from "./builder-kind.js";
import { amazonEbsKind } from "./amazon-ebs/kind.js";
import { localKind } from "./local/kind.js";

type KindOf<T extends BuilderConfig["type"]> = BuilderKind<Extract<BuilderConfig, { type: T }>>;

const kinds: { [T in BuilderConfig["type"]]: KindOf<T> } = { local: localKind, "amazon-ebs": amazonEbsKind };

/** The kind of a configured builder, typed for it. */
export function builderKind<C extends BuilderConfig>(builder: C): BuilderKind<C> {
  return kinds[builder.type] as unknown as BuilderKind<C>;
}
