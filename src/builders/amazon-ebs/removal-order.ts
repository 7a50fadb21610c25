import type { JournalEntry } from "./journal.js";

// An instance first (its security group and profile cannot go while it exists), a profile
// before its role, the image, then its snapshots (in use while it is registered).
const removalOrder: JournalEntry["type"][] = ["instance", "volume", "security-group", "key-pair", "instance-profile", "role", "image", "snapshot"];

/** Resources sorted so that each can be removed when its turn comes. */
export function inRemovalOrder<R extends Pick<JournalEntry, "type">>(resources: readonly R[]): R[] {
  return [...resources].sort((a, b) => removalOrder.indexOf(a.type) - removalOrder.indexOf(b.type));
}
