import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import type { Command } from "commander";
import { buildState, readJournalFiles } from "../../builders/build-journal.js";
import type { JournalRecord } from "../../builders/amazon-ebs/journal.js";
import { KilnError, UsageError } from "../../errors.js";
import { snapshotIdPattern } from "../../publish/remote-id.js";
import { snapshotBlockBytes } from "../../publish/snapshot-blocks.js";
import { BlockRangeError, parseBlockRanges } from "../../publish/steps/block-ranges.js";
import { kilnVersion } from "../../version.js";
import { listenForInterrupts } from "../interrupts.js";
import type { CliContext } from "../io.js";
import { loadFromCli, reporterFor, withTemplateOptions, type TemplateOptions } from "../shared-options.js";

interface PublishOptions extends TemplateOptions {
  template: string;
  resume?: boolean;
  profile?: string;
  acceptFindings?: string;
  cleanupTimeout: string;
}

export function publishCommand(program: Command, { io, redactor }: CliContext): void {
  withTemplateOptions(program.command("publish").argument("<disk>", "the disk.raw of a kiln build (its manifest.json and audit.json beside it)"))
    .description("make an AMI from a disk kiln built: uploaded into a new EBS snapshot (EBS direct APIs), registered, copied and shared; no instance is ever booted")
    .requiredOption("--template <file>", "the template whose local builder's publish.amazon says where and how")
    .option("--resume", "go on with the upload of a publish that was killed (its journal names the snapshot)")
    .option("--profile <name>", "the AWS profile to use, over the template's")
    .option("--accept-findings <file>", "a baseline of findings accepted for sharing (rule and path per entry): the only way past the audit gate")
    .option("--cleanup-timeout <seconds>", "deadline of each cleanup action", "120")
    .action(async (diskPath: string, options: PublishOptions) => {
      const loaded = await loadFromCli(options.template, options, redactor, (line) => io.err(line));
      const builder = loaded.template.builders.find((b) => b.type === "local" && b.publish?.amazon !== undefined);
      if (builder?.type !== "local" || builder.publish?.amazon === undefined) {
        throw new UsageError(`${options.template} has no local builder with publish.amazon`, "add publish: { amazon: { name: …, region: … } } to its local builder");
      }
      const { checkBuiltDisk, checkFindingsFile } = await import("../../publish/built-disk.js");
      const { gateSettings, withProfile } = await import("../../publish/publish-built-disk.js");
      const { publishPipeline } = await import("../../publish/publish-pipeline.js");
      const { runBuild } = await import("../../pipeline/run-build.js");
      const { isAmazonEbsJournal } = await import("../../builders/amazon-ebs/journal.js");
      const report = reporterFor(options, io.out, redactor);
      const interrupts = listenForInterrupts(report);
      try {
        const disk = await checkBuiltDisk(resolve(diskPath), interrupts.build);
        if (options.acceptFindings !== undefined) await checkFindingsFile(resolve(options.acceptFindings), "--accept-findings", true);
        const gate = await gateSettings(loaded, options.acceptFindings === undefined ? undefined : resolve(options.acceptFindings));
        let resume;
        if (options.resume === true) {
          const journals = (await readJournalFiles()).filter(({ record }) => record.builder === "publish" && isAmazonEbsJournal(record) && record.upload?.sha256 === disk.sha256);
          const dead = journals.find(({ record }) => buildState(record) === "gone");
          if (dead === undefined || !isAmazonEbsJournal(dead.record)) {
            throw new UsageError(journals.length > 0 ? `the publish of ${diskPath} is still running (or was started on another host)` : `no killed publish of ${diskPath} to resume`, "publish without --resume");
          }
          const { buildRegion } = await import("../../builders/amazon-ebs/aws-clients.js");
          checkResumable(dead.file, dead.record, disk.bytes, await buildRegion(withProfile(builder.publish.amazon, options.profile)));
          resume = { file: dead.file, record: dead.record };
        }
        const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
        const state = await runBuild(publishPipeline, {
          amazon: withProfile(builder.publish.amazon, options.profile), kilnVersion, manifestPath: disk.manifestPath,
          buildId: resume?.record.buildId ?? `publish-${stamp}-${randomBytes(3).toString("hex")}`,
          disk, resume,
          // The build's audit report is a file anyone with the directory could have written: the bytes
          // are audited again before they leave the account, and always when the build skipped its audit.
          gate: { ...gate, always: !disk.auditPassed },
        }, { report, signal: interrupts.build, cleanupSignal: interrupts.cleanup, onError: "cleanup", cleanupTimeoutMs: Number(options.cleanupTimeout) * 1000 });
        report.info(`published ${state.published.map((p) => `${p.image} in ${p.region}`).join(", ")} in ${report.elapsed().toFixed(1)}s`);
      } finally {
        interrupts.dispose();
      }
    });
}

/**
 * A journal to resume, checked before anything acts on it: it names a snapshot it tracks (one
 * this publish started, in the region the template names), and block ranges that lie inside the
 * disk, no more of them than it has blocks. A journal edited by hand (or by another tool) that
 * named someone else's snapshot, a region elsewhere, or ranges of millions of blocks would have
 * kiln put blocks into, delete, or fill memory with what it says.
 */
export function checkResumable(file: string, record: JournalRecord, diskBytes: number, region: string): void {
  const upload = record.upload;
  const refuse = (what: string): KilnError => new KilnError("KILN_PUBLISH_RESUME", `the journal ${file} ${what}: it is not one kiln publish wrote`, { exitCode: 2, hint: `publish without --resume; remove what it made with kiln cleanup ${record.buildId} (or delete the journal)` });
  if (upload === undefined) throw refuse("has no upload to resume");
  const snapshotId = typeof upload.snapshotId === "string" ? upload.snapshotId : "";
  if (!snapshotIdPattern.test(snapshotId)) throw refuse(`names ${JSON.stringify(upload.snapshotId)} as its snapshot`);
  if (!record.resources.some((r) => r.type === "snapshot" && r.id === snapshotId && r.region === undefined)) throw refuse(`names snapshot ${snapshotId}, which it does not track as its own`);
  if (record.region !== region) throw refuse(`is of a publish to ${String(record.region)}, and the template publishes to ${region}`);
  const blocks = Math.ceil(diskBytes / snapshotBlockBytes);
  if (typeof upload.done !== "string") throw refuse("has no list of blocks put");
  try {
    parseBlockRanges(upload.done, blocks);
  } catch (error) {
    if (!(error instanceof BlockRangeError)) throw error;
    throw refuse(`says blocks ${JSON.stringify(error.part.slice(0, 40))} were put, outside the disk's ${blocks} blocks`);
  }
}
