import { resolve } from "node:path";
import type { Command } from "commander";
import { severities, type Severity } from "../../audit/rules.js";
import { UsageError } from "../../errors.js";
import { listenForInterrupts } from "../interrupts.js";
import type { CliContext } from "../io.js";
import { reporterFor } from "../shared-options.js";

interface ShareOptions {
  public?: boolean;
  users: string[];
  region?: string;
  profile?: string;
  failOn: Severity;
  acceptFindings?: string;
  json?: boolean;
}

export function shareCommand(program: Command, { io, redactor }: CliContext): void {
  program.command("share").argument("<image>", "an AMI id (ami-…) these credentials own")
    .description("share an existing AMI publicly or with accounts, after auditing its snapshots read back (nothing launched, no volume attached)")
    .option("--public", "anyone may launch it")
    .option("--users <accounts>", "12-digit account ids that may launch it (comma-separated)", (v: string) => v.split(",").map((s) => s.trim()).filter(Boolean), [] as string[])
    .option("--region <region>", "the image's region (default: AWS_REGION, else the profile's)")
    .option("--profile <name>", "the AWS profile to use")
    .option("--fail-on <severity>", `refuse when a finding is this severe or worse (${severities.join(", ")})`, "high")
    .option("--accept-findings <file>", "a baseline of findings accepted for sharing: the only way past the audit")
    .option("--json", "one JSON event per line")
    .action(async (imageId: string, options: ShareOptions) => {
      if (!/^ami-[0-9a-f]{8,17}$/.test(imageId)) throw new UsageError(`${imageId} is not an AMI id`, "give an id like ami-0123456789abcdef0");
      if (options.public !== true && options.users.length === 0) throw new UsageError("nothing to share with", "give --public, or --users with account ids");
      const bad = options.users.find((u) => !/^\d{12}$/.test(u));
      if (bad !== undefined) throw new UsageError(`--users ${bad} is not a 12-digit AWS account id`);
      if (!(severities as readonly string[]).includes(options.failOn)) throw new UsageError(`--fail-on ${options.failOn} is not one of ${severities.join(", ")}`);
      const { shareExistingImage } = await import("../../publish/share-existing.js");
      const { checkFindingsFile } = await import("../../publish/built-disk.js");
      if (options.acceptFindings !== undefined) await checkFindingsFile(resolve(options.acceptFindings), "--accept-findings", true);
      const report = reporterFor(options, io.out, redactor);
      const interrupts = listenForInterrupts(report);
      try {
        await shareExistingImage({
          imageId, audience: { users: options.users, public: options.public === true }, region: options.region, profile: options.profile,
          failOn: options.failOn, acceptFindings: options.acceptFindings === undefined ? undefined : resolve(options.acceptFindings), report, signal: interrupts.build,
        });
      } finally {
        interrupts.dispose();
      }
    });
}
