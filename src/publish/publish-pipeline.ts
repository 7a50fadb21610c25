import { Pipeline } from "../pipeline/pipeline.js";
import { checkPublish } from "./steps/check-publish.js";
import type { PublishFacts, PublishRequest } from "./steps/publish-request.js";
import { registerImage } from "./steps/register-image.js";
import { sharePublished } from "./steps/share-published.js";
import { uploadSnapshot } from "./steps/upload-snapshot.js";

/**
 * A local disk to an AMI without ever booting a builder (seed 004's first recommendation to its
 * end): checked and audited, uploaded into a new snapshot, registered, copied and shared.
 */
export const publishPipeline = Pipeline.start<PublishRequest, PublishFacts>()
  .then(checkPublish)
  .then(uploadSnapshot)
  .then(registerImage)
  .then(sharePublished);
