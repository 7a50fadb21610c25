import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DeleteSnapshotCommand, DeregisterImageCommand, DescribeImagesCommand, type DeleteSnapshotReturnCode } from "@aws-sdk/client-ec2";
import { RecordingReporter } from "../../../test/helpers/recording-reporter.js";
import { CleanupStack } from "../../pipeline/cleanup-stack.js";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";
import type { AwsClients } from "./aws-clients.js";
import type { BuildJournal, JournalEntry } from "./journal.js";
import { removeImage, removeResource } from "./resource-removal.js";
import { trackSnapshots } from "./snapshot-tracking.js";
import { track } from "./tracked-resource.js";

/** An error shaped as the SDK throws them: the AWS error code is its name. */
function sdkError(name: string, message = "from AWS"): Error {
  return Object.assign(new Error(message), { name });
}

interface Answers {
  /** DeregisterImage's DeleteSnapshotResults (none: an endpoint without the feature, like moto). */
  results?: DeleteSnapshotReturnCode[];
  /** What DeleteSnapshot answers, call by call, per snapshot (then success). */
  deleteSnapshot?: Record<string, string[]>;
  imageGone?: boolean;
}

/** An EC2 client that answers the calls of an image's removal and records them. */
function fakeEc2(snapshots: string[], answers: Answers = {}): { clients: AwsClients; calls: string[]; deregistered: Record<string, unknown>[] } {
  const calls: string[] = [];
  const deregistered: Record<string, unknown>[] = [];
  const send = async (command: unknown): Promise<unknown> => {
    if (command instanceof DescribeImagesCommand) {
      calls.push("DescribeImages");
      if (answers.imageGone === true) throw sdkError("InvalidAMIID.NotFound");
      if (deregistered.length > 0) return { Images: [] }; // as moto and, after a while, EC2 answer
      return { Images: [{ ImageId: "ami-1", State: "available", BlockDeviceMappings: snapshots.map((SnapshotId, i) => ({ DeviceName: `/dev/sd${"abc"[i] ?? "z"}`, Ebs: { SnapshotId } })) }] };
    }
    if (command instanceof DeregisterImageCommand) {
      calls.push("DeregisterImage");
      if (deregistered.length > 0) throw sdkError("InvalidAMIID.Unavailable");
      deregistered.push({ ...command.input });
      return answers.results === undefined ? { Return: true } : { Return: true, DeleteSnapshotResults: answers.results };
    }
    if (command instanceof DeleteSnapshotCommand) {
      const id = command.input.SnapshotId ?? "";
      calls.push(`DeleteSnapshot ${id}`);
      const code = answers.deleteSnapshot?.[id]?.shift();
      if (code !== undefined) throw sdkError(code, `The snapshot ${id} is currently in use by ami-1`);
      return {};
    }
    throw new Error(`unexpected call ${String(command)}`);
  };
  return { clients: { ec2: { send }, region: "us-east-1" } as unknown as AwsClients, calls, deregistered };
}

const options = (timeoutSeconds = 30) => ({ signal: new AbortController().signal, report: new RecordingReporter(), delaySeconds: 0, timeoutSeconds });

describe("removing an image", () => {
  it("asks EC2 to delete its snapshots with it, and deletes none itself when EC2 says it did", async () => {
    const ec2 = fakeEc2(["snap-1", "snap-2"], { results: [{ SnapshotId: "snap-1", ReturnCode: "success" }, { SnapshotId: "snap-2", ReturnCode: "success" }] });
    assert.deepEqual(await removeImage(ec2.clients, "ami-1", options()), ["snap-1", "snap-2"]);
    assert.equal(ec2.deregistered[0]?.DeleteAssociatedSnapshots, true);
    assert.deepEqual(ec2.calls, ["DescribeImages", "DeregisterImage"]);
  });

  it("deletes each snapshot itself when the answer has no results (an endpoint without the feature)", async () => {
    const ec2 = fakeEc2(["snap-1", "snap-2"]);
    await removeResource(ec2.clients, { type: "image", id: "ami-1" }, options());
    assert.deepEqual(ec2.calls, ["DescribeImages", "DeregisterImage", "DeleteSnapshot snap-1", "DeleteSnapshot snap-2"]);
  });

  it("deletes a snapshot EC2 did not (a result other than success), and only that one", async () => {
    const ec2 = fakeEc2(["snap-1", "snap-2"], { results: [{ SnapshotId: "snap-1", ReturnCode: "success" }, { SnapshotId: "snap-2", ReturnCode: "internal-error" }] });
    await removeImage(ec2.clients, "ami-1", options());
    assert.deepEqual(ec2.calls, ["DescribeImages", "DeregisterImage", "DeleteSnapshot snap-2"]);
  });

  it("retries a snapshot AWS still calls in use just after the deregistration, and takes one gone already as done", async () => {
    const ec2 = fakeEc2(["snap-1", "snap-2"], { deleteSnapshot: { "snap-1": ["InvalidSnapshot.InUse", "InvalidSnapshot.InUse"], "snap-2": ["InvalidSnapshot.NotFound"] } });
    await removeImage(ec2.clients, "ami-1", options());
    assert.deepEqual(ec2.calls, ["DescribeImages", "DeregisterImage", "DeleteSnapshot snap-1", "DeleteSnapshot snap-1", "DeleteSnapshot snap-1", "DeleteSnapshot snap-2"]);
  });

  it("gives up on a snapshot still in use at the removal's deadline, after trying the others", async () => {
    const ec2 = fakeEc2(["snap-1", "snap-2"], { deleteSnapshot: { "snap-1": Array(100).fill("InvalidSnapshot.InUse") as string[] } });
    await assert.rejects(removeResource(ec2.clients, { type: "image", id: "ami-1" }, options(0)), /deleting snapshot snap-1: InvalidSnapshot.InUse/);
    assert.deepEqual(ec2.calls, ["DescribeImages", "DeregisterImage", "DeleteSnapshot snap-1", "DeleteSnapshot snap-2"]);
  });

  it("takes an image gone already as removed, with no snapshots of its own to report", async () => {
    const ec2 = fakeEc2(["snap-1"], { imageGone: true });
    assert.deepEqual(await removeImage(ec2.clients, "ami-1", options()), []);
    assert.deepEqual(ec2.calls, ["DescribeImages"]);
  });

  it("removes a snapshot journaled on its own, retried while in use", async () => {
    const ec2 = fakeEc2([], { deleteSnapshot: { "snap-9": ["InvalidSnapshot.InUse"] } });
    await removeResource(ec2.clients, { type: "snapshot", id: "snap-9" }, options());
    assert.deepEqual(ec2.calls, ["DeleteSnapshot snap-9", "DeleteSnapshot snap-9"]);
    const gone = fakeEc2([], { deleteSnapshot: { "snap-9": ["InvalidSnapshot.NotFound"] } });
    await removeResource(gone.clients, { type: "snapshot", id: "snap-9" }, options());
  });
});

describe("tracking an image's snapshots", () => {
  /** A build's context and journal, its image already tracked (as create image does). */
  async function build(ec2: ReturnType<typeof fakeEc2>) {
    const journaled: JournalEntry[] = [];
    const journal = {
      record: async (entry: JournalEntry) => { journaled.push(entry); },
      forget: async (type: string, id: string) => { journaled.splice(0, journaled.length, ...journaled.filter((e) => !(e.type === type && e.id === id))); },
      holds: (type: string, id: string) => journaled.some((e) => e.type === type && e.id === id),
    } as unknown as BuildJournal;
    const report = new RecordingReporter();
    const ctx = { signal: new AbortController().signal, report, cleanup: new CleanupStack() };
    const builder = { wait: { delay_seconds: 0, timeout_seconds: 30 } } as AmazonEbsBuilderConfig;
    // The image's own undo, registered first, as create image registers it.
    await track(ctx, { aws: ec2.clients, journal, builder }, { type: "image", id: "ami-1", temporary: false }, "deregister image ami-1 and delete its snapshots");
    const unwind = (succeeded: boolean) => ctx.cleanup.unwind({ succeeded, report, signal: new AbortController().signal, timeoutMs: 30_000 });
    return { ctx, tracking: { aws: ec2.clients, journal, builder }, journaled, report, unwind };
  }

  it("journals each snapshot (with the copy's region), kept when the build succeeds", async () => {
    const ec2 = fakeEc2(["snap-1", "snap-2"]);
    const b = await build(ec2);
    await trackSnapshots(b.ctx, b.tracking, { id: "ami-1", snapshots: ["snap-1", "snap-2"] }, "eu-west-1");
    const snapshots = b.journaled.slice(1);
    for (const entry of snapshots) assert.ok(!Number.isNaN(Date.parse(entry.createdAt ?? "")), "each with when it was recorded");
    assert.deepEqual(snapshots.map(({ createdAt: _when, ...rest }) => rest), [{ type: "snapshot", id: "snap-1", temporary: false, region: "eu-west-1" }, { type: "snapshot", id: "snap-2", temporary: false, region: "eu-west-1" }]);
    assert.deepEqual(await b.unwind(true), []);
    assert.deepEqual(ec2.calls, [], "nothing removed");
  });

  it("on failure removes the image before its snapshots, deletes each snapshot once, and forgets them all", async () => {
    const ec2 = fakeEc2(["snap-1", "snap-2"]);
    const b = await build(ec2);
    await trackSnapshots(b.ctx, b.tracking, { id: "ami-1", snapshots: ["snap-1", "snap-2"] });
    assert.deepEqual(await b.unwind(false), []);
    assert.deepEqual(ec2.calls, ["DescribeImages", "DeregisterImage", "DeleteSnapshot snap-1", "DeleteSnapshot snap-2"], "and the image's own undo, run after, finds it done");
    assert.equal(ec2.calls.filter((c) => c.startsWith("DeleteSnapshot")).length, 2);
    assert.deepEqual(b.journaled, []);
  });

  it("on failure sends no DeleteSnapshot for snapshots EC2 deleted with the image", async () => {
    const ec2 = fakeEc2(["snap-1"], { results: [{ SnapshotId: "snap-1", ReturnCode: "success" }] });
    const b = await build(ec2);
    await trackSnapshots(b.ctx, b.tracking, { id: "ami-1", snapshots: ["snap-1"] });
    assert.deepEqual(await b.unwind(false), []);
    assert.deepEqual(ec2.calls.filter((c) => c.startsWith("DeleteSnapshot")), []);
    assert.deepEqual(b.journaled, []);
  });
});

describe("a resource that is not found", () => {
  /** DeleteVolume answering NotFound `times` times, then deleting. */
  function unlisted(times: number): { clients: AwsClients; calls: () => number } {
    let calls = 0;
    const send = async (): Promise<unknown> => {
      calls++;
      if (calls <= times) throw sdkError("InvalidVolume.NotFound", "The volume 'vol-1' does not exist.");
      return {};
    };
    return { clients: { ec2: { send }, region: "us-east-1" } as unknown as AwsClients, calls: () => calls };
  }

  it("is asked for again while it was made a moment ago (EC2 may not list it yet), not taken as gone", async () => {
    const ec2 = unlisted(2);
    await removeResource(ec2.clients, { type: "volume", id: "vol-1", createdAt: new Date().toISOString() }, options());
    assert.equal(ec2.calls(), 3, "deleted once EC2 knew it");
  });

  it("is gone when it was made long ago, or when nobody recorded when", async () => {
    for (const createdAt of [new Date(Date.now() - 10 * 60_000).toISOString(), undefined]) {
      const ec2 = unlisted(5);
      await removeResource(ec2.clients, { type: "volume", id: "vol-1", ...(createdAt === undefined ? {} : { createdAt }) }, options());
      assert.equal(ec2.calls(), 1);
    }
  });
});
