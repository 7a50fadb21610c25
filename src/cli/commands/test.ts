import { mkdir, readFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { Option, type Command } from "commander";
import { CancelledError, ExitStatus, KilnError } from "../../errors.js";
import { testImage, type VmTestResult } from "../../vm-test/run-test.js";
import type { Firmware } from "../../vm-test/qemu.js";
import { requireTools } from "../../system/host-tools.js";
import type { CliContext } from "../io.js";
import { listenForInterrupts } from "../interrupts.js";
import { reporterFor } from "../shared-options.js";

interface TestCliOptions {
  firmware: Firmware[];
  user?: string;
  command: string[];
  timeout: string;
  keep?: boolean;
  boots: "1" | "2";
  json?: boolean;
  logDir?: string;
}

export function testCommand(program: Command, { io, json, redactor }: CliContext): void {
  program.command("test").argument("<image>", "a disk image kiln built: disk.raw, disk.qcow2, disk.vmdk, disk.vhdx or disk.vhd")
    .description("boot the image in QEMU with a local IMDSv2 service, log in over SSH with the host key it printed pinned, and check it as its users will meet it")
    .addOption(new Option("--firmware <firmware...>", "boot by bios, uefi or both").choices(["bios", "uefi"]).default(["bios", "uefi"]))
    .option("--user <name>", "the account the launch key is for (default: the build's manifest.json says, else root)")
    .option("--command <command>", "a command to run as that user over SSH; it must exit 0 (repeatable)", (value: string, all: string[]) => [...all, value], [])
    .option("--timeout <seconds>", "how long a boot may take to print its host keys", "600")
    .addOption(new Option("--boots <count>", "2: boot again as another instance, which must get new host keys and only its own key").choices(["1", "2"]).default("2"))
    .option("--keep", "leave the first boot running and print the ssh command that reaches it")
    .option("--json", "print the result as JSON")
    .option("--log-dir <directory>", "where the console logs go (default: kiln-test-<time> beside the image)")
    .action(async (image: string, options: TestCliOptions) => {
      const timeout = Number(options.timeout);
      if (!Number.isInteger(timeout) || timeout < 30) throw new KilnError("KILN_USAGE", `--timeout ${options.timeout} is not a number of seconds of at least 30`, { exitCode: 2, hint: "under TCG a boot takes 30–90 s: give 600 or more on a slow machine" });
      await requireTools([{ command: "qemu-system-x86_64", debianPackage: "qemu-system-x86", purpose: "boots the image" }, { command: "qemu-img", debianPackage: "qemu-utils", purpose: "makes the throw-away overlay" }]);
      const report = reporterFor({ json: options.json === true }, options.json === true ? io.err : io.out, redactor);
      const interrupts = listenForInterrupts(report);
      try {
        const logDirectory = await makeLogDirectory(image, options.logDir);
        const user = options.user ?? await manifestUser(image) ?? "root";
        const result = await testImage({
          image, firmware: [...new Set(options.firmware)], user, commands: options.command, logDirectory, bootTimeoutSeconds: timeout,
          keep: options.keep === true, boots: options.boots === "1" ? 1 : 2, signal: interrupts.build, report,
        });
        if (options.json === true) json(result);
        else for (const line of summary(result)) io.out(line);
        if (!result.passed) throw new ExitStatus(1);
      } catch (error) {
        throw interrupts.build.aborted && !(error instanceof ExitStatus) ? new CancelledError("test cancelled: the guest was stopped") : error;
      } finally {
        interrupts.dispose();
      }
    });
}

/** A new directory for this run's console logs: never writes over an earlier run's. */
async function makeLogDirectory(image: string, given: string | undefined): Promise<string> {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "").replace("T", "-");
  const directory = given ?? join(dirname(resolve(image)), `kiln-test-${stamp}`);
  try {
    await mkdir(directory, { recursive: given !== undefined, mode: 0o700 });
  } catch (error) {
    throw new KilnError("KILN_USAGE", `cannot make the console log directory ${directory}: ${(error as Error).message}`, { exitCode: 2, hint: "give --log-dir a directory you can write" });
  }
  return directory;
}

/** The login user a kiln build recorded beside the image. */
async function manifestUser(image: string): Promise<string | undefined> {
  const text = await readFile(join(dirname(resolve(image)), "manifest.json"), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const user = (JSON.parse(text) as { login?: { user?: unknown } }).login?.user;
    return typeof user === "string" && /^[a-z_][a-z0-9_-]*$/.test(user) ? user : undefined;
  } catch {
    return undefined;
  }
}

function seconds(value: number | undefined): string {
  return value === undefined ? "never" : `${value.toFixed(1)}s`;
}

function summary(result: VmTestResult): string[] {
  const lines = [`${basename(result.image)} (${result.format}): ${result.passed ? "passed" : "FAILED"}`];
  for (const boot of result.boots) {
    const failed = boot.checks.filter((c) => !c.passed);
    lines.push(`  ${boot.firmware} boot ${boot.boot} (${boot.accelerator ?? "?"}): console ${seconds(boot.secondsToConsole)}, SSH ${seconds(boot.secondsToSsh)}, ${boot.checks.length - failed.length}/${boot.checks.length} checks passed; console log ${boot.consoleLog}`);
    for (const c of failed) lines.push(`    FAIL ${c.name}: ${c.detail}`);
  }
  if (result.kept !== undefined) lines.push(`  left running (pid ${result.kept.pid}): ${result.kept.ssh}`, `  stop it with: ${result.kept.stop}`);
  return lines;
}
