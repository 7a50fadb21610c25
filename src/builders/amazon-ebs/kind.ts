import type { BuilderKind } from "../builder-kind.js";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";
import { metadataWarning, tokenlessMetadataReads } from "./metadata-access.js";
import { templateUserData, userDataText } from "./user-data.js";

/** The AWS builder. Its runtime (and the AWS SDK) load only when a build or plan needs them. */
export const amazonEbsKind: BuilderKind<AmazonEbsBuilderConfig> = {
  type: "amazon-ebs",
  needsRoot: false,
  files: (b) => (b.user_data_file === undefined ? [] : [{ path: ["user_data_file"], file: b.user_data_file, kind: "file" }]),
  warnings: async (loaded, builder) => {
    const userData = await templateUserData(builder, loaded.directory);
    const text = userData === undefined ? undefined : userDataText(userData);
    const warning = text === undefined ? undefined : metadataWarning(builder, builder.user_data_file ?? "user_data", tokenlessMetadataReads(text));
    return warning === undefined ? [] : [warning];
  },
  load: async () => (await import("./runtime.js")).amazonEbsRuntime,
};
