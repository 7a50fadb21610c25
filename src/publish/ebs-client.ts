import { EBSClient } from "@aws-sdk/client-ebs";

/**
 * The EBS direct APIs' client in one region. The block pool retries each call itself (the
 * budget must see every throttling answer), so the SDK tries once; a call whose answer stalls
 * is cut off after a minute rather than holding its slot forever. The endpoint is the SDK's
 * (AWS_ENDPOINT_URL_EBS or AWS_ENDPOINT_URL when set).
 */
export function ebsClient(region: string, profile?: string, sockets = 64): EBSClient {
  return new EBSClient({
    region, maxAttempts: 1, ...(profile === undefined ? {} : { profile }),
    requestHandler: { requestTimeout: 60_000, connectionTimeout: 10_000, httpsAgent: { maxSockets: sockets, keepAlive: true }, httpAgent: { maxSockets: sockets, keepAlive: true } },
  });
}
