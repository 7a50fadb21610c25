import { rm } from "node:fs/promises";
import type { Command } from "commander";
import type { AwsClients } from "../../builders/amazon-ebs/aws-clients.js";
import { readJournals } from "../../builders/amazon-ebs/journal.js";
import { buildState, journalDirectory } from "../../builders/build-journal.js";
import { inRemovalOrder } from "../../builders/amazon-ebs/removal-order.js";
import { ExitStatus, UsageError } from "../../errors.js";
import { TextReporter } from "../../report/reporter.js";
import type { CliContext } from "../io.js";
import { describeResource, dryRunWanted } from "./remove-resources.js";

interface CleanupOptions {
  stale?: boolean;
  yes?: boolean;
  dryRun?: boolean;
}

export function cleanupCommand(program: Command, { io, redactor }: CliContext): void {
  program.command("cleanup").argument("[build-id]", "the build whose leftovers to remove (its journal names them)")
    .description("remove what a killed or failed build left in the cloud, from its journal")
    .option("--stale", "every build whose journal is left and whose process is gone")
    .option("--yes", "remove without asking (the default when not on a terminal)")
    .option("--dry-run", "only list what would be removed")
    .action(async (buildId: string | undefined, options: CleanupOptions) => {
      if ((buildId === undefined) === (options.stale !== true)) throw new UsageError("give a build id or --stale", "kiln cleanup BUILD_ID, or kiln cleanup --stale");
      const all = await readJournals();
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
      const report = new TextReporter(io.out, redactor);
      // The AWS SDK loads only when something is to be removed.
      const [{ awsClients }, { removeEach }] = await Promise.all([import("../../builders/amazon-ebs/aws-clients.js"), import("./remove-each.js")]);
      let failed = 0;
      let total = 0;
      for (const { file, record } of journals) {
        const resources = inRemovalOrder(record.resources);
        const whose = buildState(record) === "elsewhere" ? `started on ${record.host ?? "another host"}, named here` : `its process ${record.pid} is gone`;
        io.out(`build ${record.buildId} (${record.region}, ${whose}): ${resources.length} resource${resources.length === 1 ? "" : "s"}`);
        if (dryRun) {
          for (const r of resources) io.out(`    would remove ${describeResource(r)}`);
          continue;
        }
        const clients = new Map<string, AwsClients>();
        const clientsFor = (region = record.region): AwsClients => {
          // The journal's endpoint is EC2's in the build's region only, as in the build.
          const known = clients.get(region) ?? awsClients({ region, profile: record.profile, ec2Endpoint: region === record.region ? record.endpoint : undefined });
          clients.set(region, known);
          return known;
        };
        const notRemoved = await removeEach(clientsFor, resources, report, io.out);
        total += resources.length;
        if (notRemoved === 0) await rm(file, { force: true });
        failed += notRemoved;
      }
      if (dryRun) {
        io.out("dry run: run again with --yes to remove these");
        return;
      }
      io.out(`${total - failed} removed, ${failed} could not be`);
      if (failed > 0) throw new ExitStatus(1);
    });
}
