import { authorizedKeys } from "./authorized-keys.js";
import { credentialFiles } from "./credential-files.js";
import type { FileRule } from "./file-rule.js";
import { cloudInitState, machineId, sshHostKeys, temporaryFiles } from "./leftovers.js";
import { shadowPasswords } from "./shadow.js";
import { shellHistories } from "./shell-histories.js";
import { sshdConfig } from "./sshd-config.js";

/** A fresh set of file rules for one audit (some collect across the tree). */
export function fileRules(): FileRule[] {
  return [authorizedKeys, shellHistories, credentialFiles, shadowPasswords, sshdConfig(), sshHostKeys, machineId, temporaryFiles(), cloudInitState()];
}
