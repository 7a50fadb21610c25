import { rules } from "../../rules.js";
import { baseName, fileFinding, meaningfulLines, smallFile, type FileRule } from "./file-rule.js";

const names = new Set(["authorized_keys", "authorized_keys2", "administrators_authorized_keys"]);

/** Any authorized_keys with a key in it is a back door into every instance of the image. */
export const authorizedKeys: FileRule = {
  wants: (entry) => (entry.type === "file" && names.has(baseName(entry.path).toLowerCase()) ? smallFile : undefined),
  visit: (entry, content = "") => {
    const keys = meaningfulLines(content);
    if (keys.length === 0) return [];
    // Public keys are not secret, but the comment names the builder; show only the key types.
    const types = [...new Set(keys.map((k) => /(?:^|\s)((?:ssh|ecdsa|sk)-[\w@.-]+)/.exec(k.text)?.[1] ?? "key"))];
    return [fileFinding(rules.authorizedKeys, entry.path, `${keys.length} key${keys.length === 1 ? "" : "s"} authorized to log in`, { excerpt: types.join(", ") })];
  },
};
