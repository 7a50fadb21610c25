import { Pipeline } from "../../pipeline/pipeline.js";
import type { AmazonEbsBuildRequest } from "./request.js";
import { checkCredentials } from "./steps/check-credentials.js";
import { cleanInstance } from "./steps/clean-instance.js";
import { connectSsh } from "./steps/connect-ssh.js";
import { createImage } from "./steps/create-image.js";
import { generalizeInstance } from "./steps/generalize-instance.js";
import { hardenInstance } from "./steps/harden-instance.js";
import { instanceProfile } from "./steps/instance-profile.js";
import { launchInstance } from "./steps/launch-instance.js";
import { provision } from "./steps/provision.js";
import { shareAndCopy } from "./steps/share-and-copy.js";
import { sourceImage } from "./steps/source-image.js";
import { stopInstance } from "./steps/stop-instance.js";
import { temporaryKeyPair } from "./steps/temporary-key-pair.js";
import { temporarySecurityGroup } from "./steps/temporary-security-group.js";
import { windowsPassword } from "./steps/windows-password.js";
import { writeManifest } from "./steps/write-manifest.js";

/**
 * The AWS builder: an image (AMI) from a build instance launched from the newest matching source
 * image, with a temporary key pair and security group that are always removed again.
 */
export const amazonEbsBuilder = Pipeline.start<AmazonEbsBuildRequest>()
  .then(checkCredentials)
  .then(sourceImage)
  .then(temporaryKeyPair)
  .then(temporarySecurityGroup)
  .then(instanceProfile)
  .then(launchInstance)
  .then(connectSsh)
  .then(windowsPassword)
  .then(provision)
  .then(hardenInstance)
  .then(cleanInstance)
  .then(generalizeInstance)
  .then(stopInstance)
  .then(createImage)
  .then(shareAndCopy)
  .then(writeManifest);
