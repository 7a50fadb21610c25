import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { KilnError } from "../../../errors.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { awsClients, buildRegion, type AwsClients } from "../aws-clients.js";
import { aws } from "../aws-errors.js";
import { BuildJournal } from "../journal.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import { waitPolicy } from "../wait-policy.js";

/**
 * One GetCallerIdentity before anything is created: wrong or missing credentials fail here.
 * Then the build's journal is opened; its own undo runs last and deletes it only when every
 * resource it recorded is gone, else says how to remove the rest.
 */
export const checkCredentials: Step<AmazonEbsBuildRequest, { aws: AwsClients; account: string; journal: BuildJournal }, AmazonEbsFacts> = {
  name: "check AWS credentials",
  plan: ({ region }) => ({ calls: ["sts:GetCallerIdentity (read-only)"], creates: [], note: `region ${region}; a journal under the state directory records each resource` }),
  run: async (ctx, { builder, buildId }) => {
    waitPolicy(builder, "image"); // a bad AWS_MAX_ATTEMPTS fails here, before anything exists, not in the first wait
    const clients = awsClients({ region: await buildRegion(builder), profile: builder.profile, ec2Endpoint: builder.endpoint });
    const identity = await aws(`checking the AWS credentials${builder.profile === undefined ? "" : ` of profile ${builder.profile}`} (sts:GetCallerIdentity)`, () => clients.sts.send(new GetCallerIdentityCommand({}), { abortSignal: ctx.signal }), ctx.signal);
    const account = identity.Account ?? "unknown";
    const journal = await BuildJournal.start({
      buildId, region: clients.region,
      ...(builder.endpoint === undefined ? {} : { endpoint: builder.endpoint }),
      ...(builder.profile === undefined ? {} : { profile: builder.profile }),
    });
    ctx.cleanup.defer(`close build journal ${journal.path}`, async () => {
      const left = journal.remaining();
      if (left.length === 0) return journal.remove();
      throw new KilnError("KILN_RESOURCES_LEFT", `build ${buildId}: ${left.length} resource${left.length === 1 ? "" : "s"} could not be removed: ${left.map((r) => `${r.type} ${r.id}`).join(", ")} (run: kiln cleanup ${buildId})`, {
        hint: `run: kiln cleanup ${buildId}`,
      });
    });
    return { output: { aws: clients, account, journal }, summary: `account ${account}, ${identity.Arn ?? ""}, region ${clients.region}` };
  },
};
