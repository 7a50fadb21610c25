import { EBSClient } from "@aws-sdk/client-ebs";
import { EC2Client } from "@aws-sdk/client-ec2";
import { IAMClient } from "@aws-sdk/client-iam";
import { AwsFidelity } from "./aws-fidelity.js";
import type { EbsDirectModel } from "./ebs-direct-model.js";
import type { ImageBlockPublicAccessState, ImageModel } from "./ec2-image-model.js";
import { FaultProxy } from "./fault-proxy.js";
import { startMoto, type Moto } from "./moto.js";

/** moto's credentials, and no instance-metadata lookups from the SDK. */
export const motoCredentials = { AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_EC2_METADATA_DISABLED: "true" };

/**
 * moto on a free loopback port with one fault proxy in front of it, as one suite's AWS: `env` is
 * what a kiln process needs to reach it (STS, IAM and other regions through the proxy by the
 * SDK's AWS_ENDPOINT_URL; a template's own `endpoint` is EC2's in its region only). The proxy
 * answers as AWS documents where moto is lenient (aws-fidelity.ts): the EBS direct APIs, snapshot
 * states, RegisterImage/DescribeImages and block public access for AMIs.
 */
export interface AwsStandIn {
  moto: Moto;
  proxy: FaultProxy;
  env: NodeJS.ProcessEnv;
  /** A client straight to moto (past the proxy), to look at what a build left. */
  ec2(region?: string): EC2Client;
  iam: IAMClient;
  /** An EBS direct client through the proxy (as kiln reaches it), or straight to moto with `{ pastProxy: true }`; `maxAttempts` as the SDK's. */
  ebsClient(options?: { region?: string; pastProxy?: boolean; maxAttempts?: number }): EBSClient;
  /** The EBS direct model: `pendingDescribes`, `advanceClock(ms)`, `snapshot(id)` (status and each block's SHA-256). */
  ebs: EbsDirectModel;
  /** The image model: `registered` (what RegisterImage asked for), `blockPublicAccess`. */
  images: ImageModel;
  /** The account's block public access for AMIs, as GetImageBlockPublicAccessState answers it. */
  setImageBlockPublicAccess(state: ImageBlockPublicAccessState): void;
  /** Makes another proxy (a test's own) answer as AWS too, with this stand-in's state. */
  speakThrough(proxy: FaultProxy): void;
  /** No faults, no counts, no resources, the models as new: before each test. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startAwsStandIn(env: NodeJS.ProcessEnv = {}, motoEnv: NodeJS.ProcessEnv = {}): Promise<AwsStandIn> {
  const moto = await startMoto(motoEnv);
  const proxy = new FaultProxy(moto.endpoint);
  const fidelity = new AwsFidelity();
  proxy.speakAs(fidelity);
  await proxy.start();
  const credentials = { accessKeyId: "testing", secretAccessKey: "testing" };
  return {
    moto, proxy,
    env: { ...motoCredentials, ...env, AWS_ENDPOINT_URL: proxy.endpoint },
    ec2: (region = "us-east-1") => new EC2Client({ region, endpoint: moto.endpoint, credentials }),
    iam: new IAMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials }),
    ebsClient: ({ region = "us-east-1", pastProxy = false, maxAttempts } = {}) => new EBSClient({ region, endpoint: pastProxy ? moto.endpoint : proxy.endpoint, credentials, maxAttempts }),
    ebs: fidelity.ebs,
    images: fidelity.images,
    setImageBlockPublicAccess: (state) => { fidelity.images.blockPublicAccess = state; },
    speakThrough: (other) => other.speakAs(fidelity),
    reset: async () => {
      proxy.reset();
      fidelity.reset();
      await moto.reset();
    },
    stop: async () => {
      await proxy.stop();
      await moto.stop();
    },
  };
}
