import { Pipeline } from "../../pipeline/pipeline.js";
import type { LocalFacts } from "./plan-facts.js";
import type { LocalBuildRequest } from "./request.js";
import { auditArtifact } from "./steps/audit-artifact.js";
import { baseRootfs } from "./steps/base-rootfs.js";
import { checkHost } from "./steps/check-host.js";
import { cleanTree } from "./steps/clean-tree.js";
import { convertImage } from "./steps/convert-image.js";
import { filesystemImage } from "./steps/filesystem-image.js";
import { hardenTree } from "./steps/harden-tree.js";
import { openJournal } from "./steps/open-journal.js";
import { prepareBoot } from "./steps/prepare-boot.js";
import { provision } from "./steps/provision.js";
import { publishOutput } from "./steps/publish-output.js";
import { recordBase } from "./steps/record-base.js";
import { testDisk } from "./steps/test-image.js";
import { unpackBase } from "./steps/unpack-base.js";
import { writeManifest } from "./steps/write-manifest.js";

/**
 * The local builder: a clean Linux disk image from a template, on this machine, with no cloud
 * account. The tree is built in a chroot and written into a fresh filesystem (seed 004's first
 * recommendation), so nothing deleted during the build survives into the image.
 */
export const localBuilder = Pipeline.start<LocalBuildRequest, LocalFacts>()
  .then(checkHost)
  .then(openJournal)
  .then(baseRootfs)
  .then(unpackBase)
  .then(recordBase)
  .then(provision)
  .then(hardenTree)
  .then(cleanTree)
  .then(prepareBoot)
  .then(filesystemImage)
  .then(convertImage)
  .then(auditArtifact)
  .then(testDisk)
  .then(writeManifest)
  .then(publishOutput);
