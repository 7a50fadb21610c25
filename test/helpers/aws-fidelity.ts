import { EbsDirectModel } from "./ebs-direct-model.js";
import { ImageModel } from "./ec2-image-model.js";
import { ebsAction, type ProxyCall, type RawAnswer, type Speaker } from "./fault-proxy.js";

/**
 * AWS as documented, in front of moto where moto is more lenient: the EBS direct APIs
 * (EbsDirectModel) and EC2's image calls (ImageModel), one state for every proxy that speaks with it.
 */
export class AwsFidelity implements Speaker {
  readonly ebs = new EbsDirectModel();
  readonly images = new ImageModel(this.ebs);

  reset(): void {
    this.ebs.reset();
    this.images.reset();
  }

  async answer(call: ProxyCall, forward: (body?: Buffer) => Promise<RawAnswer>): Promise<RawAnswer | undefined> {
    if (ebsAction.names.has(call.action)) return this.ebs.answer(call, forward);
    if (call.action === "DescribeSnapshots") return this.ebs.describeSnapshots(await forward());
    const params = new URLSearchParams(call.method === "GET" ? new URL(call.url, "http://x").search : call.body.toString());
    return this.images.answer(call.action, params, forward);
  }
}
