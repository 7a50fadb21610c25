import { EC2Client } from "@aws-sdk/client-ec2";
import { IAMClient } from "@aws-sdk/client-iam";
import { STSClient } from "@aws-sdk/client-sts";
import { setTimeout as sleep } from "node:timers/promises";
import { KilnError, CancelledError } from "../../errors.js";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";

/** The AWS clients one build uses, all for its region, credentials and endpoint. */
export interface AwsClients {
  ec2: EC2Client;
  sts: STSClient;
  /** IAM is global; its client is made on first use (most builds never need it). */
  iam: IAMClient;
  region: string;
}

/**
 * Credentials come from the SDK's default chain (environment, shared config and `profile`,
 * SSO, instance role); the endpoint from the template, else the SDK's AWS_ENDPOINT_URL(_EC2/
 * _STS/_IAM) variables. Retries are the SDK's standard mode: throttling and 5xx, with backoff.
 */
export function awsClients(builder: Pick<AmazonEbsBuilderConfig, "endpoint" | "profile"> & { region: string }): AwsClients {
  const common = {
    region: builder.region,
    maxAttempts: 8,
    retryMode: "standard" as const,
    ...(builder.endpoint === undefined ? {} : { endpoint: builder.endpoint }),
    ...(builder.profile === undefined ? {} : { profile: builder.profile }),
  };
  let iam: IAMClient | undefined;
  return {
    ec2: new EC2Client(common), sts: new STSClient(common), region: builder.region,
    get iam() { return (iam ??= new IAMClient(common)); },
  };
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

/** What each AWS error means to the person running the build, and what to do. */
const hints: Record<string, string> = {
  CredentialsProviderError: "name an existing profile (--profile, the template's profile, AWS_PROFILE), set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run on an instance with a role",
  InvalidClientTokenId: "the access key is not valid: check the profile or AWS_ACCESS_KEY_ID",
  SignatureDoesNotMatch: "the secret key does not match the access key: check the credentials",
  ExpiredToken: "the session has expired: log in again (aws sso login, or new temporary credentials)",
  UnauthorizedOperation: "the credentials are not allowed to do this: add the permission to their IAM policy",
  AccessDenied: "the credentials are not allowed to do this: add the permission to their IAM policy",
  AuthFailure: "AWS did not accept the credentials: check them, and that the region is enabled for the account",
  InstanceLimitExceeded: "the account's instance quota is reached: ask for a higher quota, or use another instance type",
  VcpuLimitExceeded: "the account's vCPU quota is reached: ask for a higher quota, or use a smaller instance type",
  InsufficientInstanceCapacity: "AWS has no capacity for this instance type here now: try another type or subnet",
  InvalidAMIID: "the source image does not exist in this region, or this account cannot use it",
  InvalidSubnetID: "the subnet does not exist in this region",
  InvalidVpcID: "the VPC does not exist in this region",
  NoSuchEntity: "IAM has no such role or instance profile in this account: check its name",
  EntityAlreadyExists: "an IAM role or instance profile of that name exists already: run kiln cleanup for the build that made it",
  MalformedPolicyDocument: "IAM did not accept the policy: check temporary_iam_instance_profile_policy_document (Effect, Action, Resource in each statement)",
  LimitExceeded: "an account quota is reached: remove unused resources, or ask for a higher quota",
};

/**
 * The AWS error code of an SDK error (or of the one a KilnError wraps): its `Code` where the
 * protocol gives one (IAM's `EntityAlreadyExists`, whose class is named …Exception), else its name.
 */
export function awsCode(error: unknown): string {
  const e = (error instanceof KilnError ? error.cause : error) as { Code?: string; name?: string } | undefined;
  return e?.Code ?? e?.name ?? "";
}

/** Turns an AWS SDK error into one clear KilnError naming what kiln was doing. */
export function awsError(doing: string, error: unknown, signal?: AbortSignal): Error {
  if (signal?.aborted === true || (error instanceof Error && error.name === "AbortError")) return new CancelledError();
  if (error instanceof KilnError) return error;
  const e = error as { name?: string; Code?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const code = e.Code ?? e.name ?? "Error";
  const family = Object.keys(hints).find((k) => code === k || code.startsWith(`${k}.`));
  const unreachable = ["ECONNREFUSED", "ENOTFOUND", "ETIMEDOUT", "EAI_AGAIN"].includes(e.code ?? "");
  const hint = family !== undefined ? hints[family] : unreachable ? "check the region, the endpoint and the network" : undefined;
  return new KilnError(`KILN_AWS_${code.replace(/\W/g, "_").toUpperCase()}`, `${doing}: ${code}: ${e.message ?? String(error)}`, {
    cause: error, ...(hint === undefined ? {} : { hint }),
  });
}

/** Runs one AWS call, translating its error. */
export async function aws<T>(doing: string, call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw awsError(doing, error, signal);
  }
}

/**
 * Whether an error says that a resource created a moment ago is not yet visible to the API
 * called (EC2 and IAM are eventually consistent): a new group, key pair, instance, image or
 * snapshot not found yet, or a new instance profile that RunInstances does not know yet.
 */
export function notYetVisible(error: unknown): boolean {
  const cause = (error instanceof KilnError ? error.cause : error) as { message?: string } | undefined;
  const code = awsCode(error);
  return /^Invalid(InstanceID|Group|KeyPair|AMIID|Snapshot)\.NotFound$/.test(code)
    || (code === "InvalidParameterValue" && /iamInstanceProfile|IAM Instance Profile/i.test(cause?.message ?? ""));
}

/**
 * One AWS call on resources the build has just created: retried with backoff while they are
 * not yet visible to it, for at most `seconds`; any other error at once.
 */
export async function awsEventually<T>(doing: string, call: () => Promise<T>, signal: AbortSignal, seconds = 120): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
    try {
      return await aws(doing, call, signal);
    } catch (error) {
      if (!notYetVisible(error) || Date.now() + delay > deadline) throw error;
      await sleep(delay, undefined, { signal }).catch(() => { throw new CancelledError(); });
    }
  }
}
