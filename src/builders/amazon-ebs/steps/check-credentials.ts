import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import type { Step } from "../../../pipeline/step.js";
import { aws, awsClients, type AwsClients } from "../aws-clients.js";
import type { AmazonEbsBuildRequest } from "../request.js";

/** One GetCallerIdentity before anything is created: wrong or missing credentials fail here. */
export const checkCredentials: Step<AmazonEbsBuildRequest, { aws: AwsClients; account: string }> = {
  name: "check AWS credentials",
  run: async (ctx, { builder }) => {
    const clients = awsClients(builder);
    const identity = await aws("checking the AWS credentials (sts:GetCallerIdentity)", () => clients.sts.send(new GetCallerIdentityCommand({}), { abortSignal: ctx.signal }), ctx.signal);
    const account = identity.Account ?? "unknown";
    return { output: { aws: clients, account }, summary: `account ${account}, ${identity.Arn ?? ""}, region ${clients.region}` };
  },
};
