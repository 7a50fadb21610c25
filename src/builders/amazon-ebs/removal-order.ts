import type { JournalEntry } from "./journal.js";

// An instance first (its security group and profile cannot go while it exists), a profile
// before its role, the image last.
const removalOrder: JournalEntry["type"][] = ["instance", "volume", "security-group", "key-pair", "instance-profile", "role", "image"];

/** Resources sorted so that each can be removed when its turn comes. */
export function inRemovalOrder<R extends Pick<JournalEntry, "type">>(resources: readonly R[]): R[] {
  return [...resources].sort((a, b) => removalOrder.indexOf(a.type) - removalOrder.indexOf(b.type));
}
