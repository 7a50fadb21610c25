import { EC2Client } from "@aws-sdk/client-ec2";
import { IAMClient } from "@aws-sdk/client-iam";
import { STSClient } from "@aws-sdk/client-sts";
import { KilnError } from "../../errors.js";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";

/** The AWS clients one build uses in one region. */
export interface AwsClients {
  ec2: EC2Client;
  /** STS and IAM are made on first use (most calls are EC2's). */
  sts: STSClient;
  iam: IAMClient;
  region: string;
}

/** Where and as whom a build calls AWS. */
export interface AwsAccess {
  region: string;
  profile?: string | undefined;
  /** The template's `endpoint` (Packer's custom_endpoint_ec2): EC2 in the build's region only. */
  ec2Endpoint?: string | undefined;
}

/**
 * Credentials come from the SDK's default chain (environment, shared config and `profile`,
 * SSO, instance role). The template's endpoint is EC2's in the build's region only: STS, IAM and
 * the EC2 of another region (an image copy) keep their own, the SDK's default or its
 * AWS_ENDPOINT_URL_<SERVICE> variables. Retries are the SDK's (throttling and 5xx, with backoff;
 * its retry mode from AWS_RETRY_MODE or the profile), up to 8 attempts.
 */
export function awsClients(access: AwsAccess): AwsClients {
  const common = { region: access.region, maxAttempts: 8, ...(access.profile === undefined ? {} : { profile: access.profile }) };
  let iam: IAMClient | undefined;
  let sts: STSClient | undefined;
  return {
    ec2: new EC2Client({ ...common, ...(access.ec2Endpoint === undefined ? {} : { endpoint: access.ec2Endpoint }) }),
    region: access.region,
    get sts() { return (sts ??= new STSClient(common)); },
    get iam() { return (iam ??= new IAMClient(common)); },
  };
}

/** The clients of another region (an image copy, or a copy's cleanup): its own endpoints, the same account. */
export function regionalClients(access: Pick<AwsAccess, "profile">, region: string): AwsClients {
  return awsClients({ region, profile: access.profile });
}

/**
 * The build's region: the template's, else the SDK's own choice (AWS_REGION, then the region
 * of the profile in the shared config), else one clear error.
 */
export async function buildRegion(builder: Pick<AmazonEbsBuilderConfig, "region" | "profile">): Promise<string> {
  if (builder.region !== undefined) return builder.region;
  const probe = new EC2Client(builder.profile === undefined ? {} : { profile: builder.profile });
  try {
    return await probe.config.region();
  } catch {
    throw new KilnError("KILN_NO_REGION", `no region: the builder names none, and neither AWS_REGION nor ${builder.profile === undefined ? "the default profile" : `profile ${builder.profile}`} sets one`, {
      hint: "set region in the builder (e.g. region: eu-west-1), or AWS_REGION",
    });
  } finally {
    probe.destroy();
  }
}
