import type { Command } from "commander";
import { readJournals } from "../../builders/amazon-ebs/journal.js";
import { buildState } from "../../builders/build-journal.js";
import { inRemovalOrder } from "../../builders/amazon-ebs/removal-order.js";
import { ExitStatus, UsageError } from "../../errors.js";
import { TextReporter } from "../../report/reporter.js";
import type { CliContext } from "../io.js";
import { describeResource, dryRunWanted } from "./remove-resources.js";

interface SweepOptions {
  region: string;
  olderThan: string;
  profile?: string;
  yes?: boolean;
  dryRun?: boolean;
}

/** "6h", "90m", "2d" in milliseconds. */
export function parseAge(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([smhd])$/.exec(text.trim());
  if (m === null) return undefined;
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
}

export function sweepCommand(program: Command, { io, redactor }: CliContext): void {
  program.command("sweep")
    .description("find and remove kiln-tagged temporary resources (instances, security groups, key pairs, kiln's IAM roles and instance profiles) and kiln-tagged snapshots no image uses, that no running build owns")
    .requiredOption("--region <region>", "the region to sweep")
    .requiredOption("--older-than <age>", "only builds started longer ago than this (e.g. 6h, 90m, 2d)")
    .option("--profile <name>", "a profile of the shared AWS config")
    .option("--yes", "remove without asking (the default when not on a terminal)")
    .option("--dry-run", "only list what would be removed")
    .action(async (options: SweepOptions) => {
      const age = parseAge(options.olderThan);
      if (age === undefined) throw new UsageError(`--older-than ${options.olderThan} is not an age`, "write it like 6h, 90m or 2d");
      const [{ awsClients }, { findKilnResources }, { removeEach }] = await Promise.all([
        import("../../builders/amazon-ebs/aws-clients.js"), import("../../builders/amazon-ebs/sweep.js"), import("./remove-each.js"),
      ]);
      const clients = awsClients({ region: options.region, profile: options.profile });
      const signal = AbortSignal.timeout(5 * 60_000);
      // A build still running (here, or maybe on the host that shares this state directory) is its own business, whatever its age.
      const running = new Set((await readJournals()).filter((j) => buildState(j.record) !== "gone").map((j) => j.record.buildId));
      const found = inRemovalOrder((await findKilnResources(clients, signal))
        .filter((r) => Date.now() - r.builtAt.getTime() > age && !running.has(r.buildId)));
      if (found.length === 0) {
        io.out(`no kiln-tagged temporary resources or unused snapshots older than ${options.olderThan} in ${options.region}`);
        return;
      }
      const dryRun = dryRunWanted(options);
      const listed = found.map((r) => ({ ...r, note: ` (build ${r.buildId})` }));
      if (dryRun) {
        for (const r of listed) io.out(`    would remove ${describeResource(r, r.note)}`);
        io.out("dry run: run again with --yes to remove these");
        return;
      }
      const failed = await removeEach(() => clients, listed, new TextReporter(io.out, redactor), io.out);
      io.out(`${found.length - failed} removed, ${failed} could not be`);
      if (failed > 0) throw new ExitStatus(1);
    });
}
