import { DescribeInstancesCommand, type Instance } from "@aws-sdk/client-ec2";
import { type AwsClients } from "./aws-clients.js";
import { aws } from "./aws-errors.js";

/** One instance as EC2 describes it now (its state, addresses), or undefined. */
export async function describeInstance(clients: AwsClients, id: string, signal: AbortSignal): Promise<Instance | undefined> {
  const found = await aws(`describing instance ${id}`, () => clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }), { abortSignal: signal }), signal);
  return found.Reservations?.[0]?.Instances?.[0];
}
