import { setTimeout as sleep } from "node:timers/promises";
import {
  DeleteInstanceProfileCommand, DeleteRoleCommand, DeleteRolePolicyCommand, DetachRolePolicyCommand, GetInstanceProfileCommand,
  ListAttachedRolePoliciesCommand, ListInstanceProfilesForRoleCommand, ListRolePoliciesCommand, RemoveRoleFromInstanceProfileCommand,
} from "@aws-sdk/client-iam";
import {
  DeleteKeyPairCommand, DeleteSecurityGroupCommand, DeleteVolumeCommand, DeleteSnapshotCommand, DeregisterImageCommand, DescribeImagesCommand, TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import type { Reporter } from "../../report/reporter.js";
import { type AwsClients } from "./aws-clients.js";
import { aws, awsCode, awsEventually } from "./aws-errors.js";
import { describeInstance } from "./instance-state.js";
import type { JournalEntry } from "./journal.js";
import { pollUntil } from "./poll.js";

export interface RemovalOptions {
  signal: AbortSignal;
  report: Reporter;
  delaySeconds: number;
  timeoutSeconds: number;
  /** The setting that makes the removal's waits longer, named when one times out. */
  setting?: string;
}

/** A resource someone (or an earlier attempt) already removed is done, not a failure. */
const gone = new Set(["InvalidKeyPair.NotFound", "InvalidGroup.NotFound", "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidInstanceID.NotFound", "InvalidSnapshot.NotFound", "InvalidVolume.NotFound", "NoSuchEntity"]);

/**
 * Removes one resource a build created. The build's own undo and `kiln cleanup` both call this,
 * so a dead build's leftovers are removed exactly as a living build removes them: an instance is
 * terminated and waited for (its security group cannot go before), a group still in use is
 * retried until the deadline, an image takes its snapshots with it, a snapshot goes once no
 * image uses it.
 */
export async function removeResource(clients: AwsClients, entry: Pick<JournalEntry, "type" | "id" | "createdAt">, options: RemovalOptions): Promise<void> {
  // EC2 and IAM may not list what they made a moment ago: "not found" then means "not yet", not "gone".
  const unlistedUntil = entry.createdAt === undefined ? 0 : Date.parse(entry.createdAt) + listedWithinMs;
  for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
    try {
      await removers[entry.type](clients, entry.id, options);
      return;
    } catch (error) {
      if (!gone.has(awsCode(error))) throw error;
      if (Date.now() + delay > unlistedUntil) return;
      await sleep(delay, undefined, { signal: options.signal });
    }
  }
}

/** How long after a create call EC2 and IAM may still answer that the resource does not exist. */
const listedWithinMs = 30_000;

const removers: Record<JournalEntry["type"], (clients: AwsClients, id: string, options: RemovalOptions) => Promise<void>> = {
  instance: async (clients, id, options) => {
    const { signal } = options;
    // Volumes the template kept past termination (delete_on_termination: false) go too.
    const kept = ((await describeInstance(clients, id, signal))?.BlockDeviceMappings ?? [])
      .filter((m) => m.Ebs?.DeleteOnTermination === false).map((m) => m.Ebs?.VolumeId).filter((v): v is string => v !== undefined);
    await aws(`terminating instance ${id}`, () => clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }), { abortSignal: signal }), signal);
    await pollUntil(`instance ${id} to terminate`, async () => ((await describeInstance(clients, id, signal))?.State?.Name === "terminated" ? true : undefined), options);
    for (const volume of kept) {
      await removeResource(clients, { type: "volume", id: volume }, options);
    }
  },
  volume: async (clients, id, { signal }) => {
    await aws(`deleting volume ${id}`, () => clients.ec2.send(new DeleteVolumeCommand({ VolumeId: id }), { abortSignal: signal }), signal);
  },
  "security-group": async (clients, id, { signal, timeoutSeconds }) => {
    // Still in use while its instance shuts down: retried, but not past the removal's own deadline.
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
      try {
        await clients.ec2.send(new DeleteSecurityGroupCommand({ GroupId: id }), { abortSignal: signal });
        return;
      } catch (error) {
        if ((error as { name?: string }).name !== "DependencyViolation" || signal.aborted || Date.now() > deadline) throw error;
        await sleep(5000, undefined, { signal });
      }
    }
  },
  "key-pair": async (clients, name, { signal }) => {
    // By name: unique in the region, and accepted by every EC2-compatible endpoint.
    await aws(`deleting key pair ${name}`, () => clients.ec2.send(new DeleteKeyPairCommand({ KeyName: name }), { abortSignal: signal }), signal);
  },
  "instance-profile": async (clients, name, { signal }) => {
    const found = await aws(`looking up instance profile ${name}`, () => clients.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }), { abortSignal: signal }), signal);
    for (const role of found.InstanceProfile?.Roles ?? []) {
      await aws(`removing role ${role.RoleName} from instance profile ${name}`, () => clients.iam.send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: name, RoleName: role.RoleName }), { abortSignal: signal }), signal);
    }
    await aws(`deleting instance profile ${name}`, () => clients.iam.send(new DeleteInstanceProfileCommand({ InstanceProfileName: name }), { abortSignal: signal }), signal);
  },
  // IAM deletes a role only once nothing holds it: no inline or attached policy, no profile.
  role: async (clients, name, { signal }) => {
    const inline = await aws(`listing the policies of role ${name}`, () => clients.iam.send(new ListRolePoliciesCommand({ RoleName: name }), { abortSignal: signal }), signal);
    for (const policy of inline.PolicyNames ?? []) {
      await aws(`deleting policy ${policy} of role ${name}`, () => clients.iam.send(new DeleteRolePolicyCommand({ RoleName: name, PolicyName: policy }), { abortSignal: signal }), signal);
    }
    const attached = await aws(`listing the attached policies of role ${name}`, () => clients.iam.send(new ListAttachedRolePoliciesCommand({ RoleName: name }), { abortSignal: signal }), signal);
    for (const policy of attached.AttachedPolicies ?? []) {
      await aws(`detaching ${policy.PolicyArn} from role ${name}`, () => clients.iam.send(new DetachRolePolicyCommand({ RoleName: name, PolicyArn: policy.PolicyArn }), { abortSignal: signal }), signal);
    }
    const profiles = await aws(`listing the instance profiles of role ${name}`, () => clients.iam.send(new ListInstanceProfilesForRoleCommand({ RoleName: name }), { abortSignal: signal }), signal);
    for (const profile of profiles.InstanceProfiles ?? []) {
      await aws(`removing role ${name} from instance profile ${profile.InstanceProfileName}`, () => clients.iam.send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: profile.InstanceProfileName, RoleName: name }), { abortSignal: signal }), signal);
    }
    await aws(`deleting role ${name}`, () => clients.iam.send(new DeleteRoleCommand({ RoleName: name }), { abortSignal: signal }), signal);
  },
  image: async (clients, id, options) => {
    await imageAndSnapshots(clients, id, options);
  },
  snapshot: async (clients, id, options) => {
    await deleteSnapshot(clients, id, options, Date.now() + options.timeoutSeconds * 1000);
  },
};

/**
 * Deregisters an image and deletes its snapshots, and returns them (none when the image was
 * gone already: a snapshot journaled on its own is then removed by itself). AWS deletes them in
 * the same call when asked (DeleteAssociatedSnapshots); each it did not (an endpoint without the
 * feature answers no results, or a result other than success) is deleted here.
 */
export async function removeImage(clients: AwsClients, id: string, options: RemovalOptions): Promise<string[]> {
  return imageAndSnapshots(clients, id, options).catch((error: unknown) => {
    if (gone.has(awsCode(error))) return [];
    throw error;
  });
}

/** removeImage, with an image that is not found let through as the error it is (see removeResource). */
async function imageAndSnapshots(clients: AwsClients, id: string, options: RemovalOptions): Promise<string[]> {
  const { signal } = options;
  // A pending image does not list all its snapshots yet: wait until it is done, or they would be left.
  const settled = await pollUntil(`image ${id} to finish before it is removed`, async () => {
    const image = (await aws(`describing image ${id}`, () => clients.ec2.send(new DescribeImagesCommand({ ImageIds: [id] }), { abortSignal: signal }), signal)).Images?.[0];
    return image?.State === "pending" ? undefined : { image };
  }, options);
  const mapped = (settled.image?.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => s !== undefined);
  const answer = await aws(`deregistering image ${id}`, () => clients.ec2.send(new DeregisterImageCommand({ ImageId: id, DeleteAssociatedSnapshots: true }), { abortSignal: signal }), signal);
  const results = answer.DeleteSnapshotResults ?? [];
  const deleted = new Set(results.filter((r) => r.ReturnCode === "success").map((r) => r.SnapshotId));
  const snapshots = [...new Set([...mapped, ...results.map((r) => r.SnapshotId).filter((s): s is string => s !== undefined)])];
  // One deadline for all: AWS may call a snapshot in use for a while after its image is deregistered.
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  const failures: unknown[] = [];
  for (const snapshot of snapshots.filter((s) => !deleted.has(s))) {
    await deleteSnapshot(clients, snapshot, options, deadline).catch((error: unknown) => failures.push(error));
  }
  if (failures.length > 0) throw failures[0];
  return snapshots;
}

/** Deletes a snapshot, retried with backoff while AWS still calls it in use, until `deadline`; one gone already is done. */
async function deleteSnapshot(clients: AwsClients, id: string, { signal }: RemovalOptions, deadline: number): Promise<void> {
  try {
    await awsEventually(`deleting snapshot ${id}`, () => clients.ec2.send(new DeleteSnapshotCommand({ SnapshotId: id }), { abortSignal: signal }), signal,
      Math.max(0, (deadline - Date.now()) / 1000), (error) => awsCode(error) === "InvalidSnapshot.InUse");
  } catch (error) {
    if (awsCode(error) !== "InvalidSnapshot.NotFound") throw error;
  }
}
