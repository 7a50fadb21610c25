import { EC2Client } from "@aws-sdk/client-ec2";
import { IAMClient } from "@aws-sdk/client-iam";
import { FaultProxy } from "./fault-proxy.js";
import { startMoto, type Moto } from "./moto.js";

/** moto's credentials, and no instance-metadata lookups from the SDK. */
export const motoCredentials = { AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_EC2_METADATA_DISABLED: "true" };

/**
 * moto on a free loopback port with one fault proxy in front of it, as one suite's AWS: `env` is
 * what a kiln process needs to reach it (STS, IAM and other regions through the proxy by the
 * SDK's AWS_ENDPOINT_URL; a template's own `endpoint` is EC2's in its region only).
 */
export interface AwsStandIn {
  moto: Moto;
  proxy: FaultProxy;
  env: NodeJS.ProcessEnv;
  /** A client straight to moto (past the proxy), to look at what a build left. */
  ec2(region?: string): EC2Client;
  iam: IAMClient;
  /** No faults, no counts, no resources: as new, before each test. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startAwsStandIn(env: NodeJS.ProcessEnv = {}, motoEnv: NodeJS.ProcessEnv = {}): Promise<AwsStandIn> {
  const moto = await startMoto(motoEnv);
  const proxy = new FaultProxy(moto.endpoint);
  await proxy.start();
  const credentials = { accessKeyId: "testing", secretAccessKey: "testing" };
  return {
    moto, proxy,
    env: { ...motoCredentials, ...env, AWS_ENDPOINT_URL: proxy.endpoint },
    ec2: (region = "us-east-1") => new EC2Client({ region, endpoint: moto.endpoint, credentials }),
    iam: new IAMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials }),
    reset: async () => {
      proxy.reset();
      await moto.reset();
    },
    stop: async () => {
      await proxy.stop();
      await moto.stop();
    },
  };
}
