import type { JournalEntry } from "../../builders/amazon-ebs/journal.js";

/** On a terminal a first run only shows what would go; --yes removes; elsewhere (CI) it removes. */
export function dryRunWanted(options: { yes?: boolean; dryRun?: boolean }): boolean {
  return options.dryRun === true || (process.stdin.isTTY === true && options.yes !== true);
}

/** "security group sg-…", as people say it. */
export function describeResource(resource: Pick<JournalEntry, "type" | "id">, note = ""): string {
  return `${resource.type.replace("-", " ")} ${resource.id}${note}`;
}

