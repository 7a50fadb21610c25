import { setTimeout as sleep } from "node:timers/promises";
import { CancelledError, KilnError } from "../../errors.js";

/**
 * An error an AWS service answered (or the SDK met on its way there), with the service's own
 * code as a field (`InvalidAMIID.NotFound`, `EntityAlreadyExists`): callers match that code,
 * never the message.
 */
export class AwsError extends KilnError {
  constructor(readonly awsCode: string, message: string, readonly httpStatus: number | undefined, options: { hint?: string; cause: unknown }) {
    super("KILN_AWS", message, options);
    this.name = "AwsError";
  }
}

/** What each AWS error means to the person running the build, and what to do; a family (`InvalidAMIID`) covers its codes (`InvalidAMIID.Malformed`). */
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
  IdempotentParameterMismatch: "a retried call reused a token with other parameters: run kiln cleanup for this build and build again",
};

/** Network errors: AWS was never reached. */
const unreachable = new Set(["ECONNREFUSED", "ENOTFOUND", "ETIMEDOUT", "EAI_AGAIN"]);

/**
 * The AWS error code of an SDK error, or of the one an AwsError wraps: its `Code` where the
 * protocol gives one (IAM's `EntityAlreadyExists`, whose class is named …Exception), else its name.
 */
export function awsCode(error: unknown): string {
  if (error instanceof AwsError) return error.awsCode;
  const e = (error instanceof KilnError ? error.cause : error) as { Code?: string; name?: string } | undefined;
  return e?.Code ?? e?.name ?? "";
}

/** Turns an AWS SDK error into one clear error naming what kiln was doing. */
export function awsError(doing: string, error: unknown, signal?: AbortSignal): Error {
  if (signal?.aborted === true || (error instanceof Error && error.name === "AbortError")) return new CancelledError();
  if (error instanceof KilnError) return error;
  const e = error as { name?: string; Code?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const code = e.Code ?? e.name ?? "Error";
  const family = hints[code] ?? hints[code.split(".")[0] ?? ""];
  const hint = family ?? (unreachable.has(e.code ?? "") ? "check the region, the endpoint and the network" : undefined);
  return new AwsError(code, `${doing}: ${code}: ${e.message ?? String(error)}`, e.$metadata?.httpStatusCode, { cause: error, ...(hint === undefined ? {} : { hint }) });
}

/** Runs one AWS call, translating its error. */
export async function aws<T>(doing: string, call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw awsError(doing, error, signal);
  }
}

/** EC2's answers about a resource made a moment ago that its API does not list yet. */
const notFoundYet = new Set(["InvalidInstanceID.NotFound", "InvalidGroup.NotFound", "InvalidKeyPair.NotFound", "InvalidAMIID.NotFound", "InvalidSnapshot.NotFound"]);

/**
 * Whether an error says that a resource created a moment ago is not yet visible to the API
 * called (EC2 and IAM are eventually consistent): a new group, key pair, instance, image or
 * snapshot not found yet, or a new instance profile that RunInstances does not know yet (EC2
 * says that only in the message of an InvalidParameterValue).
 */
export function notYetVisible(error: unknown): boolean {
  const code = awsCode(error);
  if (notFoundYet.has(code)) return true;
  const cause = (error instanceof KilnError ? error.cause : error) as { message?: string } | undefined;
  return code === "InvalidParameterValue" && /iamInstanceProfile|IAM Instance Profile/i.test(cause?.message ?? "");
}

/**
 * One AWS call on resources the build has just created: retried with backoff while they are
 * not yet visible to it, for at most `seconds`; any other error at once.
 */
export async function awsEventually<T>(doing: string, call: () => Promise<T>, signal: AbortSignal, seconds = 120, retryWhen: (error: unknown) => boolean = notYetVisible): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
    try {
      return await aws(doing, call, signal);
    } catch (error) {
      if (!retryWhen(error) || Date.now() + delay > deadline) throw error;
      await sleep(delay, undefined, { signal }).catch(() => { throw new CancelledError(); });
    }
  }
}
