import { AddRoleToInstanceProfileCommand, CreateInstanceProfileCommand, CreateRoleCommand, GetInstanceProfileCommand, GetRoleCommand, PutRolePolicyCommand } from "@aws-sdk/client-iam";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import type { AwsClients } from "../aws-clients.js";
import { aws, awsCode, awsEventually } from "../aws-errors.js";
import type { BuildJournal } from "../journal.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import { kilnTags } from "../tags.js";
import { createResource, ownedBy, track } from "../tracked-resource.js";

/** IAM's answer about a role or profile made a moment ago that it does not list yet. */
const notYetInIam = (error: unknown): boolean => awsCode(error) === "NoSuchEntity";

/** Where kiln's temporary roles and profiles live, so `kiln sweep` can list exactly those. */
export const kilnIamPath = "/kiln/";

/** Only EC2 may assume the role: it hands the role's credentials to the build instance. */
const ec2TrustPolicy = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

/** `kiln-<build id>`, cut from the front to IAM's 64-character role-name limit (the end is unique). */
export function temporaryIamName(buildId: string): string {
  return `kiln-${buildId.slice(-59)}`;
}

/**
 * The instance profile the build instance launches with (seed 002): an existing one, checked
 * now so a misspelling fails before anything is created, or a role of this build's own with the
 * template's permission policy, inside a profile of the same name. Both are tagged, journaled
 * and removed after the build like every temporary resource.
 */
export const instanceProfile: Step<AmazonEbsBuildRequest & { aws: AwsClients; journal: BuildJournal }, { instanceProfile?: { name: string; temporary: boolean } }, AmazonEbsFacts> = {
  name: "prepare instance profile",
  plan: ({ builder, buildId, tags }) => {
    if (builder.temporary_iam_instance_profile_policy_document !== undefined) {
      const name = `/kiln/${temporaryIamName(buildId)}`;
      return { calls: ["iam:CreateRole", "iam:GetRole (read-only, until it exists)", "iam:PutRolePolicy", "iam:CreateInstanceProfile", "iam:GetInstanceProfile (read-only, until it exists)", "iam:AddRoleToInstanceProfile"], creates: [{ type: "role", name, tags: tags() }, { type: "instance profile", name, tags: tags() }] };
    }
    if (builder.iam_instance_profile !== undefined) return { calls: ["iam:GetInstanceProfile (read-only)"], creates: [], note: `existing ${builder.iam_instance_profile}` };
    return { calls: [], creates: [], note: "none (the template names no instance profile)" };
  },
  run: async (ctx, input) => {
    const { builder, aws: clients, buildId, kilnVersion } = input;
    const signal = ctx.signal;
    if (builder.iam_instance_profile !== undefined) {
      const name = builder.iam_instance_profile;
      const found = await aws(`looking up instance profile ${name} (iam:GetInstanceProfile)`, () => clients.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }), { abortSignal: signal }), signal);
      const roles = (found.InstanceProfile?.Roles ?? []).map((r) => r.RoleName).join(", ");
      return { output: { instanceProfile: { name, temporary: false } }, summary: `${name} (existing${roles === "" ? ", no role" : `, role ${roles}`})` };
    }
    const policy = builder.temporary_iam_instance_profile_policy_document;
    if (policy === undefined) return { output: {}, summary: "none (the template names no instance profile)" };
    const name = temporaryIamName(buildId);
    const tags = kilnTags(buildId, kilnVersion);
    const retried = "EntityAlreadyExists";
    await createResource<object>("creating the temporary role (iam:CreateRole)", (callSignal) => clients.iam.send(new CreateRoleCommand({
      RoleName: name, Path: kilnIamPath, AssumeRolePolicyDocument: ec2TrustPolicy, Tags: tags,
      Description: `kiln build ${buildId}: temporary, deleted when the build ends`,
    }), { abortSignal: callSignal }), {
      duplicate: retried,
      findOurs: async () => { const { Role } = await clients.iam.send(new GetRoleCommand({ RoleName: name })); return ownedBy(buildId, Role?.Tags) ? {} : undefined; },
    });
    await track(ctx, input, { type: "role", id: name, temporary: true }, `delete role ${name}`);
    // IAM is eventually consistent: a role just made may be unknown to the next call for a moment.
    await awsEventually(`waiting for the new role ${name} to exist (iam:GetRole)`, () => clients.iam.send(new GetRoleCommand({ RoleName: name }), { abortSignal: signal }), signal, 60, notYetInIam);
    await aws("giving the temporary role its policy (iam:PutRolePolicy)", () => clients.iam.send(new PutRolePolicyCommand({
      RoleName: name, PolicyName: "kiln-build", PolicyDocument: JSON.stringify(policy),
    }), { abortSignal: signal }), signal);
    await createResource<object>("creating the temporary instance profile (iam:CreateInstanceProfile)", (callSignal) => clients.iam.send(new CreateInstanceProfileCommand({
      InstanceProfileName: name, Path: kilnIamPath, Tags: tags,
    }), { abortSignal: callSignal }), {
      duplicate: retried,
      findOurs: async () => { const { InstanceProfile } = await clients.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name })); return ownedBy(buildId, InstanceProfile?.Tags) ? {} : undefined; },
    });
    await track(ctx, input, { type: "instance-profile", id: name, temporary: true }, `delete instance profile ${name}`);
    await awsEventually(`waiting for the new instance profile ${name} to exist (iam:GetInstanceProfile)`, () => clients.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }), { abortSignal: signal }), signal, 60, notYetInIam);
    await aws("adding the role to the instance profile (iam:AddRoleToInstanceProfile)", () => clients.iam.send(new AddRoleToInstanceProfileCommand({
      InstanceProfileName: name, RoleName: name,
    }), { abortSignal: signal }), signal);
    const statements = policy.Statement.length;
    return { output: { instanceProfile: { name, temporary: true } }, summary: `${name} (temporary role, ${statements} statement${statements === 1 ? "" : "s"})` };
  },
};
