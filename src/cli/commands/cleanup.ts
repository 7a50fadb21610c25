import { rm } from "node:fs/promises";
import type { Command } from "commander";
import type { AwsClients } from "../../builders/amazon-ebs/aws-clients.js";
import { isAmazonEbsJournal, type JournalRecord } from "../../builders/amazon-ebs/journal.js";
import { inRemovalOrder } from "../../builders/amazon-ebs/removal-order.js";
import { buildState, journalDirectory, readJournalFiles, type JournalHeader } from "../../builders/build-journal.js";
import { findLeftovers, isLocalJournal, removeLeftover, type LocalJournalRecord } from "../../builders/local/local-journal.js";
import { ExitStatus, UsageError } from "../../errors.js";
import { TextReporter } from "../../report/reporter.js";
import type { CliContext } from "../io.js";
import { describeResource, dryRunWanted } from "./remove-resources.js";

interface CleanupOptions {
  stale?: boolean;
  yes?: boolean;
  dryRun?: boolean;
}

/** What one journal's cleanup came to: how many things it named, how many could not be removed. */
interface Tally { total: number; failed: number }

export function cleanupCommand(program: Command, context: CliContext): void {
  const { io } = context;
  program.command("cleanup").argument("[build-id]", "the build whose leftovers to remove (its journal names them)")
    .description("remove what a killed or failed build left (cloud resources; a local build's work directory and partial output), from its journal")
    .option("--stale", "every build whose journal is left and whose process is gone")
    .option("--yes", "remove without asking (the default when not on a terminal)")
    .option("--dry-run", "only list what would be removed")
    .action(async (buildId: string | undefined, options: CleanupOptions) => {
      if ((buildId === undefined) === (options.stale !== true)) throw new UsageError("give a build id or --stale", "kiln cleanup BUILD_ID, or kiln cleanup --stale");
      const all = await readJournalFiles();
      // --stale takes only builds known dead; one from another host (a shared home) is left to that host.
      for (const { record } of all.filter(({ record }) => buildId === undefined && buildState(record) === "elsewhere")) {
        io.out(`build ${record.buildId} was started on ${record.host ?? "another host"}: left alone (run kiln cleanup there, or kiln cleanup ${record.buildId} once it is dead)`);
      }
      const journals = all.filter(({ record }) => (buildId === undefined ? buildState(record) === "gone" : record.buildId === buildId));
      if (buildId !== undefined && journals.length === 0) {
        throw new UsageError(`no journal for build ${buildId} in ${journalDirectory()}`, "kiln sweep finds kiln-tagged resources without a journal");
      }
      const alive = journals.find(({ record }) => buildState(record) === "running");
      if (alive !== undefined) {
        throw new UsageError(`build ${alive.record.buildId} is still running (pid ${alive.record.pid})`, "stop it first: Ctrl-C (or SIGTERM) makes a build clean up after itself");
      }
      if (journals.length === 0) {
        io.out("no stale build journals: nothing to clean up");
        return;
      }
      const dryRun = dryRunWanted(options);
      const sum: Tally = { total: 0, failed: 0 };
      for (const { file, record } of journals) {
        const whose = buildState(record) === "elsewhere" ? `started on ${record.host ?? "another host"}, named here` : `its process ${record.pid} is gone`;
        const tally = isLocalJournal(record) ? await cleanupLocal(record, whose, dryRun, io.out)
          : isAmazonEbsJournal(record) ? await cleanupAmazonEbs(record, whose, dryRun, context)
          : unknownJournal(record, file, io.out);
        sum.total += tally.total;
        sum.failed += tally.failed;
        if (!dryRun && tally.failed === 0) await rm(file, { force: true });
      }
      if (dryRun) {
        io.out("dry run: run again with --yes to remove these");
        return;
      }
      io.out(`${sum.total - sum.failed} removed, ${sum.failed} could not be`);
      if (sum.failed > 0) throw new ExitStatus(1);
    });
}

/** A local build's work directory and partial output: found by the names its journal gave before making them. */
async function cleanupLocal(record: LocalJournalRecord, whose: string, dryRun: boolean, out: (line: string) => void): Promise<Tally> {
  const leftovers = await findLeftovers(record);
  out(`build ${record.buildId} (local, ${whose}): ${leftovers.length} director${leftovers.length === 1 ? "y" : "ies"}`);
  let failed = 0;
  for (const leftover of leftovers) {
    if (dryRun) {
      out(`    would remove ${leftover.type} ${leftover.path}`);
      continue;
    }
    try {
      await removeLeftover(leftover);
      out(`    removed ${leftover.type} ${leftover.path}`);
    } catch (error) {
      failed++;
      out(`    could not remove ${leftover.type} ${leftover.path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return { total: leftovers.length, failed };
}

async function cleanupAmazonEbs(record: JournalRecord, whose: string, dryRun: boolean, { io, redactor }: CliContext): Promise<Tally> {
  const resources = inRemovalOrder(record.resources);
  io.out(`build ${record.buildId} (${record.region}, ${whose}): ${resources.length} resource${resources.length === 1 ? "" : "s"}`);
  if (dryRun) {
    for (const r of resources) io.out(`    would remove ${describeResource(r)}`);
    return { total: resources.length, failed: 0 };
  }
  // The AWS SDK loads only when something is to be removed.
  const [{ awsClients }, { removeEach }] = await Promise.all([import("../../builders/amazon-ebs/aws-clients.js"), import("./remove-each.js")]);
  const clients = new Map<string, AwsClients>();
  const clientsFor = (region = record.region): AwsClients => {
    // The journal's endpoint is EC2's in the build's region only, as in the build.
    const known = clients.get(region) ?? awsClients({ region, profile: record.profile, ec2Endpoint: region === record.region ? record.endpoint : undefined });
    clients.set(region, known);
    return known;
  };
  const failed = await removeEach(clientsFor, resources, new TextReporter(io.out, redactor), io.out);
  return { total: resources.length, failed };
}

/** A journal of a builder this kiln does not know (a newer kiln's): kept, and said so. */
function unknownJournal(record: JournalHeader, file: string, out: (line: string) => void): Tally {
  out(`build ${record.buildId}: its journal ${file} is of a builder this kiln does not know (${record.builder ?? "none"}): left alone`);
  return { total: 1, failed: 1 };
}
