import { DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand, paginateDescribeImages, paginateDescribeSnapshots, type Tag } from "@aws-sdk/client-ec2";
import { GetInstanceProfileCommand, ListRoleTagsCommand, paginateListInstanceProfiles, paginateListRoles } from "@aws-sdk/client-iam";
import { type AwsClients } from "./aws-clients.js";
import { aws } from "./aws-errors.js";
import { kilnIamPath } from "./steps/instance-profile.js";
import type { JournalEntry } from "./journal.js";

export interface SweptResource extends Pick<JournalEntry, "type" | "id"> {
  buildId: string;
  /** When its build started, from the build id (security groups carry no creation time). */
  builtAt: Date;
}

const byKiln = [{ Name: "tag-key", Values: ["kiln:build-id"] }];

/** `<name>-YYYYMMDD-HHMMSS-<hex>`: the build's start, UTC. */
export function buildTime(buildId: string): Date | undefined {
  const m = /-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-[0-9a-f]+$/.exec(buildId);
  return m === null ? undefined : new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

/**
 * The temporary resources kiln builds left in a region, found by their `kiln:build-id` tag even
 * when no journal names them (a build killed between a create call and its journal write), and
 * kiln's snapshots that no image uses any more (their image deregistered, they left behind).
 * Images are never swept: a tagged image is what a build made.
 */
export async function findKilnResources(clients: AwsClients, signal: AbortSignal): Promise<SweptResource[]> {
  const reservations = (await aws("listing kiln-tagged instances", () => clients.ec2.send(new DescribeInstancesCommand({ Filters: byKiln }), { abortSignal: signal }), signal)).Reservations ?? [];
  const groups = (await aws("listing kiln-tagged security groups", () => clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: byKiln }), { abortSignal: signal }), signal)).SecurityGroups ?? [];
  const keys = (await aws("listing kiln-tagged key pairs", () => clients.ec2.send(new DescribeKeyPairsCommand({ Filters: byKiln }), { abortSignal: signal }), signal)).KeyPairs ?? [];
  const found: SweptResource[] = [];
  const add = (type: JournalEntry["type"], id: string | undefined, tags: Tag[] | undefined): void => {
    const buildId = tags?.find((t) => t.Key === "kiln:build-id")?.Value;
    const builtAt = buildId === undefined ? undefined : buildTime(buildId);
    if (id !== undefined && buildId !== undefined && builtAt !== undefined) found.push({ type, id, buildId, builtAt });
  };
  for (const i of reservations.flatMap((r) => r.Instances ?? [])) if (i.State?.Name !== "terminated") add("instance", i.InstanceId, i.Tags);
  for (const g of groups) add("security-group", g.GroupId, g.Tags);
  for (const k of keys) add("key-pair", k.KeyName, k.Tags);
  const snapshots = await aws("listing kiln-tagged snapshots", () => everything(paginateDescribeSnapshots({ client: clients.ec2 }, { OwnerIds: ["self"], Filters: byKiln }, { abortSignal: signal }), (p) => p.Snapshots), signal);
  if (snapshots.length > 0) {
    // Every image of the account, not a filter on the snapshot ids: EC2-compatible endpoints (moto) lack that filter.
    const images = await aws("listing this account's images", () => everything(paginateDescribeImages({ client: clients.ec2 }, { Owners: ["self"], IncludeDisabled: true }, { abortSignal: signal }), (p) => p.Images), signal);
    const used = new Set(images.flatMap((i) => i.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId));
    for (const s of snapshots) if (s.State !== "pending" && !used.has(s.SnapshotId)) add("snapshot", s.SnapshotId, s.Tags);
  }
  // IAM is global and its lists carry no tags: kiln's roles and profiles are those under its
  // path, their tags read one by one.
  const roles = await aws("listing kiln's roles", () => everything(paginateListRoles({ client: clients.iam }, { PathPrefix: kilnIamPath }), (p) => p.Roles), signal);
  for (const { RoleName } of roles) {
    add("role", RoleName, (await aws(`listing the tags of role ${RoleName}`, () => clients.iam.send(new ListRoleTagsCommand({ RoleName }), { abortSignal: signal }), signal)).Tags);
  }
  const profiles = await aws("listing kiln's instance profiles", () => everything(paginateListInstanceProfiles({ client: clients.iam }, { PathPrefix: kilnIamPath }), (p) => p.InstanceProfiles), signal);
  for (const { InstanceProfileName } of profiles) {
    const profile = await aws(`looking up instance profile ${InstanceProfileName}`, () => clients.iam.send(new GetInstanceProfileCommand({ InstanceProfileName }), { abortSignal: signal }), signal);
    add("instance-profile", InstanceProfileName, profile.InstanceProfile?.Tags);
  }
  return found;
}

/** Every item of every page (IAM lists 100 at a time). */
async function everything<Page, Item>(pages: AsyncIterable<Page>, items: (page: Page) => Item[] | undefined): Promise<Item[]> {
  const all: Item[] = [];
  for await (const page of pages) all.push(...(items(page) ?? []));
  return all;
}
