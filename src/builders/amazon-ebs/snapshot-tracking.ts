import { CleanupStack, type CleanupFailure } from "../../pipeline/cleanup-stack.js";
import type { StepContext } from "../../pipeline/step.js";
import type { MachineImage } from "./image-state.js";
import { removeImage } from "./resource-removal.js";
import { track, type Tracking } from "./tracked-resource.js";
import { waitPolicy } from "./wait-policy.js";

/**
 * Journals an image's snapshots as resources of their own once their ids are known (the image
 * is available), so that `kiln cleanup` removes them even when their image is gone by then.
 * Like the image they are undone only if the build fails. The build's undos run newest first,
 * which would put theirs before their image's, while the image still holds them: each is held
 * back here and runs after one undo that removes the image first. That removal usually takes
 * them along; those are then only forgotten. `region`: where they are, when not in the build's
 * region (a copy's snapshots), as for the copy itself.
 */
export async function trackSnapshots(ctx: StepContext, tracking: Tracking, image: Pick<MachineImage, "id" | "snapshots">, region?: string): Promise<void> {
  if (image.snapshots.length === 0) return;
  const { aws: clients, journal, builder } = tracking;
  const held = new Map<string, CleanupStack>();
  // Registered before the first snapshot is journaled, so a Ctrl-C in between leaves none that nothing undoes.
  ctx.cleanup.deferOnFailure(`deregister image ${image.id}, then delete snapshot${image.snapshots.length === 1 ? "" : "s"} ${image.snapshots.join(", ")}`, async (signal) => {
    // The same waits as every other undo of the build (track's).
    const wait = waitPolicy(builder, "instance");
    const taken = new Set(await removeImage(clients, image.id, { signal, report: ctx.report, ...wait }));
    // The image's own undo, which runs after this one, then finds it done.
    await journal.forget("image", image.id);
    const failures: CleanupFailure[] = [];
    for (const [id, undo] of held) {
      if (taken.has(id)) await journal.forget("snapshot", id);
      else failures.push(...await undo.unwind({ succeeded: false, report: ctx.report, signal, timeoutMs: wait.timeoutSeconds * 1000 }));
    }
    if (failures[0] !== undefined) throw failures[0].error;
  });
  for (const id of image.snapshots) {
    const undo = new CleanupStack();
    held.set(id, undo);
    await track({ ...ctx, cleanup: undo }, tracking, { type: "snapshot", id, temporary: false, ...(region === undefined ? {} : { region }) }, `delete snapshot ${id}`);
  }
}
