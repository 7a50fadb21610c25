import { Pipeline } from "../../pipeline/pipeline.js";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";
import type { AmazonEbsFacts } from "./plan-facts.js";
import type { AmazonEbsBuildRequest } from "./request.js";
import type { MachineImage } from "./image-state.js";
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

/** What a finished amazon-ebs build hands back. */
export interface AmazonEbsResult {
  image: MachineImage;
  copies: MachineImage[];
  manifestPath: string;
}

/**
 * The AWS builder: an image (AMI) from a build instance launched from the newest matching source
 * image, with a temporary key pair and security group that are always removed again. The steps
 * are chosen for the platform and the communicator: a Linux build has no Windows steps, a
 * Windows build no Linux hardening, a build without a communicator no SSH at all.
 */
export function amazonEbsPipeline(builder: Pick<AmazonEbsBuilderConfig, "platform" | "communicator" | "windows">): Pipeline<AmazonEbsBuildRequest, AmazonEbsResult, AmazonEbsFacts> {
  const launched = Pipeline.start<AmazonEbsBuildRequest, AmazonEbsFacts>()
    .then(checkCredentials)
    .then(sourceImage)
    .then(temporaryKeyPair)
    .then(temporarySecurityGroup)
    .then(instanceProfile)
    .then(launchInstance);
  const windows = builder.platform === "windows";
  // The password needs no communicator: EC2 hands it over.
  const password = windows && builder.windows.get_password;
  if (builder.communicator === "none") return imaged(launched.thenIf(password, windowsPassword).then(provision));
  const connected = launched.then(connectSsh);
  if (windows) return imaged(connected.thenIf(password, windowsPassword).then(provision).thenIf(builder.windows.generalize, generalizeInstance));
  return imaged(connected.then(provision).then(hardenInstance).then(cleanInstance));
}

type Provisioned = Parameters<typeof stopInstance.run>[1] & Parameters<typeof createImage.run>[1] & Parameters<typeof writeManifest.run>[1] extends infer T ? Omit<T, "image" | "copies"> : never;

/** What a build composed this way leaves undone, said before it starts. */
export function compositionWarnings(builder: Pick<AmazonEbsBuilderConfig, "platform" | "communicator" | "windows">, hardened: boolean): string[] {
  if (builder.communicator === "none") {
    return [builder.platform === "windows"
      ? "communicator none: the instance cannot be generalized; the image keeps its identity (no sysprep)"
      : `communicator none: the instance is not${hardened ? " hardened or" : ""} cleaned; its passwords, sshd and whatever its user data left stay in the image`];
  }
  return builder.platform === "windows" && !builder.windows.generalize ? ["windows.generalize is false: the image keeps this instance's keys and identity (no sysprep)"] : [];
}

/** The end every build shares: stop, image, share and copy, manifest. */
function imaged<S extends object>(provisioned: Pipeline<AmazonEbsBuildRequest, S & Provisioned, AmazonEbsFacts>): Pipeline<AmazonEbsBuildRequest, AmazonEbsResult, AmazonEbsFacts> {
  return provisioned.then(stopInstance).then(createImage).then(shareAndCopy).then(writeManifest).producing<AmazonEbsResult>();
}
