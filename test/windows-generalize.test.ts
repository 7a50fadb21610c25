import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DescribeInstancesCommand, StopInstancesCommand } from "@aws-sdk/client-ec2";
import type { AwsClients } from "../src/builders/amazon-ebs/aws-clients.js";
import { generalizeInstance } from "../src/builders/amazon-ebs/steps/generalize-instance.js";
import { stopInstance } from "../src/builders/amazon-ebs/steps/stop-instance.js";
import type { Communicator, RunScriptOptions } from "../src/communicator/communicator.js";
import { ConnectionLostError, scriptRunError } from "../src/communicator/windows-communicator.js";
import { KilnError } from "../src/errors.js";
import { CleanupStack } from "../src/pipeline/cleanup-stack.js";
import { CommandError } from "../src/system/command-error.js";
import type { LoadedTemplate } from "../src/template/load.js";
import { builder as builderSchema, type AmazonEbsBuilderConfig } from "../src/template/schema.js";
import { sysprepShutsDown, sysprepStartingLine } from "../src/windows/generalize.js";
import type { LaunchAgent, WindowsTarget } from "../src/windows/launch-agent.js";
import { plannedSysprepStop } from "../src/windows/sysprep-stop.js";
import { RecordingReporter } from "./helpers/recording-reporter.js";

const instanceId = "i-0123456789abcdef0";

function windowsBuilder(windows: Partial<AmazonEbsBuilderConfig["windows"]> = {}, extra: Record<string, unknown> = {}): AmazonEbsBuilderConfig {
  return builderSchema.parse({
    type: "amazon-ebs", region: "us-east-1", source_ami: "ami-0123456789abcdef0", instance_type: "t3.micro", ami_name: "kiln-test", platform: "windows",
    windows: { openssh_sha256: "a".repeat(64), ...windows }, wait: { delay_seconds: 0.01, timeout_seconds: 5 }, ...extra,
  }) as AmazonEbsBuilderConfig;
}

/**
 * Prints `prints` (CRLF, as Windows does), then ends as told: `drop` rejects exactly as
 * WindowsCommunicator does when ssh2 closes the channel of a dropped connection (no exit code).
 */
function fakeWindows(prints: string[], end: "drop" | { exitCode: number } | "ok"): Communicator & { scripts: string[] } {
  const scripts: string[] = [];
  return {
    scripts,
    description: "fake ssh (PowerShell)",
    runScript: async (script: string, options: RunScriptOptions) => {
      scripts.push(script);
      for (const line of prints) options.onStdoutLine?.(`${line}\r`);
      if (end === "ok") return;
      // SshCommunicator's channel "close" handler, with ssh2's arguments for each ending.
      const raw = new CommandError(options.what, "the script", end === "drop" ? (undefined as unknown as null) : end.exitCode, null, ["sysprep: the last words"]);
      throw scriptRunError(raw, options.what);
    },
    upload: () => Promise.reject(new Error("not used")),
    download: () => Promise.reject(new Error("not used")),
  };
}

/** An EC2 client that answers DescribeInstances with `states` in turn (the last one again) and records every command. */
function fakeEc2(states: string[]): { clients: AwsClients; sent: string[] } {
  const sent: string[] = [];
  let look = 0;
  const send = (command: unknown): Promise<unknown> => {
    sent.push((command as object).constructor.name);
    if (command instanceof DescribeInstancesCommand) {
      const name = states[Math.min(look++, states.length - 1)];
      return Promise.resolve({ Reservations: [{ Instances: [{ InstanceId: instanceId, State: { Name: name } }] }] });
    }
    if (command instanceof StopInstancesCommand) return Promise.resolve({});
    return Promise.reject(new Error(`unexpected ${String(command)}`));
  };
  return { clients: { ec2: { send }, region: "us-east-1" } as unknown as AwsClients, sent };
}

const sysprepRan = ["removed authorized_keys, host keys and PowerShell histories", "armed the first-boot key task", sysprepStartingLine];

function input(agent: LaunchAgent, communicator: Communicator, clients: AwsClients, { spot = false } = {}) {
  const windows: WindowsTarget = { version: agent === "ec2config" ? "2012" : "2019", agent };
  return {
    loaded: {} as LoadedTemplate, builder: windowsBuilder({ launch_agent: agent }), outputDirectory: "/nonexistent", buildId: "kiln-test-1", kilnVersion: "0.0.0",
    aws: clients, instance: { id: instanceId, spot, addresses: {} as never }, communicator, windows,
  };
}

function context(report = new RecordingReporter()) {
  return { signal: new AbortController().signal, report, cleanup: new CleanupStack() };
}

describe("generalize: a sysprep that stops the instance itself", () => {
  it("takes EC2Config's dropped connection as success, waits for stopped, and the stop step sends no StopInstances", async () => {
    const ec2 = fakeEc2(["stopping", "stopping", "stopped"]);
    const report = new RecordingReporter();
    const start = input("ec2config", fakeWindows(sysprepRan, "drop"), ec2.clients);
    const generalized = await generalizeInstance.run(context(report), start);
    assert.deepEqual(generalized.output, { stoppedBySysprep: true });
    assert.match(generalized.summary ?? "", new RegExp(`sysprep stopped the instance ${instanceId} itself`));
    assert.ok(report.lines.some((l) => l.includes("the connection closed as ec2config's sysprep shut Windows down")), report.lines.join("\n"));
    assert.deepEqual(ec2.sent, ["DescribeInstancesCommand", "DescribeInstancesCommand", "DescribeInstancesCommand"], "polled until stopped, never stopped it");

    const stopped = await stopInstance.run(context(), { ...start, ...generalized.output });
    assert.equal(ec2.sent.filter((c) => c === "StopInstancesCommand").length, 0, "no StopInstances for an instance sysprep stopped");
    assert.equal(ec2.sent.length, 4, "one DescribeInstances confirms it");
    assert.match(stopped.summary ?? "", /already stopped by sysprep/);
  });

  it("still waits for stopped when EC2Config's script ends before Windows goes down", async () => {
    const ec2 = fakeEc2(["running", "stopping", "stopped"]);
    const generalized = await generalizeInstance.run(context(), input("ec2config", fakeWindows([...sysprepRan, "generalized (ec2config)"], "ok"), ec2.clients));
    assert.deepEqual(generalized.output, { stoppedBySysprep: true });
    assert.equal(ec2.sent.length, 3);
  });

  it("fails with KILN_INSTANCE_GONE, naming the instance, when it is terminated instead of stopped", async () => {
    const ec2 = fakeEc2(["stopping", "terminated"]);
    await assert.rejects(generalizeInstance.run(context(), input("ec2config", fakeWindows(sysprepRan, "drop"), ec2.clients)), (error: unknown) => {
      assert.ok(error instanceof KilnError);
      assert.equal(error.code, "KILN_INSTANCE_GONE");
      assert.match(error.message, new RegExp(`instance ${instanceId} is terminated`));
      assert.match(error.hint ?? "", /terminated it/);
      return true;
    });
  });

  it("says a spot instance cannot survive EC2Config's shutdown when it is shutting down", async () => {
    const ec2 = fakeEc2(["shutting-down"]);
    await assert.rejects(generalizeInstance.run(context(), input("ec2config", fakeWindows(sysprepRan, "drop"), ec2.clients, { spot: true })),
      (error: unknown) => error instanceof KilnError && error.code === "KILN_INSTANCE_GONE" && /without spot_price/.test(error.hint ?? ""));
  });

  it("fails with the script's output when EC2Config's sysprep exits non-zero, and asks EC2 nothing", async () => {
    const ec2 = fakeEc2(["stopped"]);
    await assert.rejects(generalizeInstance.run(context(), input("ec2config", fakeWindows(sysprepRan, { exitCode: 1 }), ec2.clients)), (error: unknown) => {
      assert.ok(error instanceof CommandError && !(error instanceof ConnectionLostError));
      assert.match(error.message, new RegExp(`generalizing instance ${instanceId} \\(ec2config sysprep\\) failed: the script exited with code 1`));
      assert.match(error.message, /sysprep: the last words/);
      return true;
    });
    assert.deepEqual(ec2.sent, []);
  });

  it("fails when the connection drops before EC2Config's sysprep started", async () => {
    const ec2 = fakeEc2(["stopped"]);
    await assert.rejects(generalizeInstance.run(context(), input("ec2config", fakeWindows(sysprepRan.slice(0, 1), "drop"), ec2.clients)), ConnectionLostError);
    assert.deepEqual(ec2.sent, []);
  });
});

describe("generalize: a sysprep that leaves the instance running", () => {
  for (const agent of ["ec2launch-v1", "ec2launch-v2"] as const) {
    it(`fails when the connection drops during ${agent}'s sysprep, naming the instance, the agent and what to do`, async () => {
      const ec2 = fakeEc2(["stopped"]);
      await assert.rejects(generalizeInstance.run(context(), input(agent, fakeWindows(sysprepRan, "drop"), ec2.clients)), (error: unknown) => {
        assert.ok(error instanceof ConnectionLostError);
        assert.match(error.message, new RegExp(`generalizing instance ${instanceId} \\(${agent} sysprep\\) failed: the connection closed while the script ran`));
        assert.match(error.hint ?? "", /console output/);
        return true;
      });
      assert.deepEqual(ec2.sent, []);
    });
  }

  it("leaves stopping to the stop step, which sends StopInstances", async () => {
    const ec2 = fakeEc2(["stopping", "stopped"]);
    const start = input("ec2launch-v2", fakeWindows([...sysprepRan, "generalized (ec2launch-v2)"], "ok"), ec2.clients);
    const generalized = await generalizeInstance.run(context(), start);
    assert.deepEqual(generalized.output, { stoppedBySysprep: false });
    assert.deepEqual(ec2.sent, []);
    await stopInstance.run(context(), { ...start, ...generalized.output });
    assert.equal(ec2.sent[0], "StopInstancesCommand");
  });
});

describe("generalize: what a dropped channel is, and what the plans say", () => {
  it("tells a channel closed with no exit status from a non-zero exit and from a signal", () => {
    const lost = scriptRunError(new CommandError("x", "the script", undefined as unknown as null, null, []), "x");
    assert.ok(lost instanceof ConnectionLostError && lost instanceof CommandError, "still a CommandError for whoever handled one");
    const exited = new CommandError("x", "the script", 1, null, []);
    assert.equal(scriptRunError(exited, "x"), exited);
    const killed = new CommandError("x", "the script", null, "SIGKILL", []);
    assert.equal(scriptRunError(killed, "x"), killed);
  });

  it("knows which agents' sysprep shuts down, and plans the stop accordingly", () => {
    assert.deepEqual((["ec2config", "ec2launch-v1", "ec2launch-v2"] as const).map(sysprepShutsDown), [true, false, false]);
    assert.equal(plannedSysprepStop(windowsBuilder({ launch_agent: "ec2config" })), "always");
    assert.equal(plannedSysprepStop(windowsBuilder({ version: "2012" })), "always");
    assert.equal(plannedSysprepStop(windowsBuilder()), "with EC2Config");
    assert.equal(plannedSysprepStop(windowsBuilder({ version: "2019" })), "never");
    assert.equal(plannedSysprepStop(windowsBuilder({ launch_agent: "ec2config", generalize: false })), "never");
    assert.equal(plannedSysprepStop(windowsBuilder({ launch_agent: "ec2config" }, { communicator: "none" })), "never");
    const facts = (builder: AmazonEbsBuilderConfig) => ({ builder }) as never;
    assert.deepEqual(stopInstance.plan(facts(windowsBuilder({ launch_agent: "ec2config" }))).calls, ["ec2:DescribeInstances (read-only, once)"]);
    assert.deepEqual(stopInstance.plan(facts(windowsBuilder({ launch_agent: "ec2launch-v1" }))).calls, ["ec2:StopInstances", "ec2:DescribeInstances (read-only, until stopped)"]);
    assert.deepEqual(generalizeInstance.plan(facts(windowsBuilder({ launch_agent: "ec2launch-v2" }))).calls, []);
    assert.match(generalizeInstance.plan(facts(windowsBuilder())).note ?? "", /with EC2Config, its sysprep shuts the instance down/);
  });
});
