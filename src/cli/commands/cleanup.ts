import { rm } from "node:fs/promises";
import type { Command } from "commander";
import { awsClients } from "../../builders/amazon-ebs/aws-clients.js";
import { journalDirectory, processAlive, readJournals, type JournalEntry, type JournalRecord } from "../../builders/amazon-ebs/journal.js";
import { removeResource } from "../../builders/amazon-ebs/resource-removal.js";
import { ExitStatus, UsageError } from "../../errors.js";
import { TextReporter } from "../../report/reporter.js";
import type { CliContext } from "../io.js";

interface CleanupOptions {
  stale?: boolean;
  yes?: boolean;
  dryRun?: boolean;
}

// An instance first (its security group cannot go while it exists), the image last.
const order: JournalEntry["type"][] = ["instance", "security-group", "key-pair", "image"];

export function cleanupCommand(program: Command, { io, redactor }: CliContext): void {
  program.command("cleanup").argument("[build-id]", "the build whose leftovers to remove (its journal names them)")
    .description("remove what a killed or failed build left in the cloud, from its journal")
    .option("--stale", "every build whose journal is left and whose process is gone")
    .option("--yes", "remove without asking (the default when not on a terminal)")
    .option("--dry-run", "only list what would be removed")
    .action(async (buildId: string | undefined, options: CleanupOptions) => {
      if ((buildId === undefined) === (options.stale !== true)) throw new UsageError("give a build id or --stale", "kiln cleanup BUILD_ID, or kiln cleanup --stale");
      const journals = (await readJournals()).filter(({ record }) => (buildId === undefined ? !processAlive(record.pid) : record.buildId === buildId));
      if (buildId !== undefined && journals.length === 0) {
        throw new UsageError(`no journal for build ${buildId} in ${journalDirectory()}`, "kiln sweep finds kiln-tagged resources without a journal");
      }
      if (journals.length === 0) {
        io.out("no stale build journals: nothing to clean up");
        return;
      }
      // On a terminal, a first run only shows what would go; --yes removes.
      const dryRun = options.dryRun === true || (process.stdin.isTTY === true && options.yes !== true);
      const report = new TextReporter(io.out, redactor);
      let failed = 0;
      for (const { file, record } of journals) {
        const resources = [...record.resources].sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
        io.out(`build ${record.buildId} (${record.region}, pid ${record.pid} gone): ${resources.length} resource${resources.length === 1 ? "" : "s"}`);
        if (dryRun) {
          for (const r of resources) io.out(`    would remove ${describe(r)}`);
          continue;
        }
        const notRemoved = await removeAll(record, resources, report, io.out);
        if (notRemoved === 0) await rm(file, { force: true });
        failed += notRemoved;
      }
      if (dryRun) io.out("dry run: run again with --yes to remove these");
      else if (failed > 0) throw new ExitStatus(1);
    });
}

async function removeAll(record: JournalRecord, resources: JournalEntry[], report: TextReporter, out: (line: string) => void): Promise<number> {
  const clients = awsClients({ region: record.region, ...(record.endpoint === undefined ? {} : { endpoint: record.endpoint }), ...(record.profile === undefined ? {} : { profile: record.profile }) });
  let failed = 0;
  for (const r of resources) {
    try {
      await removeResource(clients, r, { signal: AbortSignal.timeout(15 * 60_000), report, delaySeconds: 2, timeoutSeconds: 900 });
      out(`    removed ${describe(r)}`);
    } catch (error) {
      failed++;
      out(`    could not remove ${describe(r)}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return failed;
}

function describe(resource: JournalEntry): string {
  return `${resource.type.replace("-", " ")} ${resource.id}`;
}
