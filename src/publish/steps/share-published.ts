import { writeFile, readFile, rename } from "node:fs/promises";
import type { MachineImage } from "../../builders/amazon-ebs/image-state.js";
import { shareAndCopyImage, audienceOf } from "../../builders/amazon-ebs/steps/share-and-copy.js";
import { KilnError } from "../../errors.js";
import type { Step } from "../../pipeline/step.js";
import { describeAudience, leavesAccount } from "../share-gate.js";
import type { PublishAccess, PublishFacts, PublishRequest } from "./publish-request.js";
import type { UploadedSnapshot } from "./upload-snapshot.js";

/** A published image in one region, as the manifest lists it. */
export interface PublishedImage {
  region: string;
  image: string;
  snapshots: string[];
}

/**
 * Copies and launch permissions as the amazon-ebs builder gives them; the audit gate ran before
 * the upload, on the very file uploaded. Then the images are the publish's artifacts (kept), and
 * the disk's manifest lists region → image.
 */
export const sharePublished: Step<PublishRequest & PublishAccess & { snapshot: UploadedSnapshot; image: MachineImage }, { published: PublishedImage[] }, PublishFacts> = {
  name: "share and copy image",
  plan: ({ amazon }) => ({
    calls: [...(amazon.users.length + amazon.groups.length > 0 ? ["ec2:ModifyImageAttribute"] : []), ...amazon.regions.map((r) => `ec2:CopyImage to ${r}`)],
    creates: amazon.regions.map((r) => ({ type: "image copy", name: `${amazon.name} in ${r}` })),
    note: leavesAccount({ users: amazon.users, public: amazon.public }) ? `shared with ${describeAudience({ users: amazon.users, public: amazon.public })}` : "not shared",
  }),
  run: async (ctx, input) => {
    const { image, settings, disk } = input;
    const copies = await shareAndCopyImage(ctx, {
      ...input, settings, image,
      // Audited in "check AWS access", before the upload: the same file, the same sha256.
      gate: () => Promise.resolve(),
    });
    const published = [image, ...copies].map((i) => ({ region: i.region, image: i.id, snapshots: i.snapshots }));
    if (input.manifestPath !== undefined) await addToManifest(input.manifestPath, disk.sha256, published);
    await input.journal.kept();
    const audience = audienceOf(settings);
    return { output: { published }, summary: `${published.map((p) => `${p.image} in ${p.region}`).join(", ")}; ${leavesAccount(audience) ? `shared with ${describeAudience(audience)}` : "not shared"}` };
  },
};

/** Adds the images to the disk's manifest (written anew beside, then renamed over it). */
async function addToManifest(path: string, sha256: string, published: PublishedImage[]): Promise<void> {
  const manifest = JSON.parse(await readFile(path, "utf8")) as { artifacts?: { format: string; sha256: string }[]; published?: { amazon?: (PublishedImage & { sha256: string })[] } };
  if (manifest.artifacts?.some((a) => a.sha256 === sha256) !== true) {
    throw new KilnError("KILN_PUBLISH_MISMATCH", `${path} lists no artifact with sha256 ${sha256}`, { hint: "publish the disk the manifest describes" });
  }
  manifest.published = { ...manifest.published, amazon: [...(manifest.published?.amazon ?? []), ...published.map((p) => ({ ...p, sha256 }))] };
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(temporary, path);
}
