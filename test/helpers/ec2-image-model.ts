import type { EbsDirectModel } from "./ebs-direct-model.js";
import { awsErrorAnswer, type RawAnswer } from "./fault-proxy.js";
import { elementText, escapeXml, rewriteItems, withoutElements } from "./xml-items.js";

/** One block device of a registered image, as RegisterImage asked for it. */
export interface RegisteredDevice {
  deviceName: string;
  snapshotId?: string;
  volumeSize?: number;
  volumeType?: string;
  deleteOnTermination?: boolean;
  iops?: number;
}

/** What RegisterImage asked for (moto keeps only the name and description). */
export interface RegisteredImage {
  architecture?: string;
  rootDeviceName?: string;
  blockDevices: RegisteredDevice[];
  bootMode?: string;
  enaSupport?: boolean;
  imdsSupport?: string;
  tpmSupport?: string;
  virtualizationType?: string;
  sriovNetSupport?: string;
}

export type ImageBlockPublicAccessState = "unblocked" | "block-new-sharing";

const xml = (status: number, body: string): RawAnswer => ({ status, headers: { "content-type": "text/xml" }, body: Buffer.from(body) });
const ec2Error = (code: string, message: string): RawAnswer => xml(400, awsErrorAnswer(400, code, message).body);
const flag = (value: string | null): boolean | undefined => (value === null ? undefined : value === "true");

/**
 * EC2's image calls where moto differs from AWS: RegisterImage keeps (and DescribeImages shows)
 * what was asked and refuses what AWS refuses; the account's block public access for AMIs is a
 * state of its own that ModifyImageAttribute obeys.
 */
export class ImageModel {
  /** The account's block public access for AMIs (AWS's default for new accounts is block-new-sharing; moto has none). */
  blockPublicAccess: ImageBlockPublicAccessState = "unblocked";
  readonly registered = new Map<string, RegisteredImage>();

  constructor(private readonly ebs: EbsDirectModel) {}

  reset(): void {
    this.registered.clear();
    this.blockPublicAccess = "unblocked";
  }

  async answer(action: string, params: URLSearchParams, forward: () => Promise<RawAnswer>): Promise<RawAnswer | undefined> {
    switch (action) {
      case "RegisterImage": return this.register(params, forward);
      case "DescribeImages": return this.describe(await forward());
      case "GetImageBlockPublicAccessState":
        return xml(200, `<GetImageBlockPublicAccessStateResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fault-proxy</requestId><imageBlockPublicAccessState>${this.blockPublicAccess}</imageBlockPublicAccessState><managedBy>account</managedBy></GetImageBlockPublicAccessStateResponse>`);
      case "EnableImageBlockPublicAccess":
      case "DisableImageBlockPublicAccess":
        this.blockPublicAccess = action === "EnableImageBlockPublicAccess" ? "block-new-sharing" : "unblocked";
        return xml(200, `<${action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fault-proxy</requestId><imageBlockPublicAccessState>${this.blockPublicAccess}</imageBlockPublicAccessState></${action}Response>`);
      case "ModifyImageAttribute": return this.blockPublicAccess === "block-new-sharing" && makesPublic(params)
        // EC2 user guide, "Block public access for AMIs": any attempt to make an AMI public is blocked.
        ? ec2Error("OperationNotPermitted", "You can't publicly share this image because block public access for AMIs is enabled for this account. To publicly share the image, you must call the DisableImageBlockPublicAccess API.")
        : undefined;
      default: return undefined;
    }
  }

  private async register(params: URLSearchParams, forward: () => Promise<RawAnswer>): Promise<RawAnswer> {
    const image: RegisteredImage = {
      architecture: params.get("Architecture") ?? undefined,
      rootDeviceName: params.get("RootDeviceName") ?? undefined,
      bootMode: params.get("BootMode") ?? undefined,
      enaSupport: flag(params.get("EnaSupport")),
      imdsSupport: params.get("ImdsSupport") ?? undefined,
      tpmSupport: params.get("TpmSupport") ?? undefined,
      virtualizationType: params.get("VirtualizationType") ?? undefined,
      sriovNetSupport: params.get("SriovNetSupport") ?? undefined,
      blockDevices: [],
    };
    for (let n = 1; params.has(`BlockDeviceMapping.${n}.DeviceName`); n++) {
      const at = (field: string): string | null => params.get(`BlockDeviceMapping.${n}.${field}`);
      image.blockDevices.push({
        deviceName: at("DeviceName") ?? "",
        snapshotId: at("Ebs.SnapshotId") ?? undefined,
        volumeSize: at("Ebs.VolumeSize") === null ? undefined : Number(at("Ebs.VolumeSize")),
        volumeType: at("Ebs.VolumeType") ?? undefined,
        deleteOnTermination: flag(at("Ebs.DeleteOnTermination")),
        ...(at("Ebs.Iops") === null ? {} : { iops: Number(at("Ebs.Iops")) }),
      });
    }
    // RegisterImage (EC2 API reference): ImdsSupport's only value is v2.0, TpmSupport's v2.0; NitroTPM needs UEFI boot.
    if (image.imdsSupport !== undefined && image.imdsSupport !== "v2.0") return ec2Error("InvalidParameterValue", `Value (${image.imdsSupport}) for parameter imdsSupport is invalid. Valid value: v2.0`);
    if (image.tpmSupport !== undefined && image.tpmSupport !== "v2.0") return ec2Error("InvalidParameterValue", `Value (${image.tpmSupport}) for parameter tpmSupport is invalid. Valid value: v2.0`);
    if (image.tpmSupport === "v2.0" && image.bootMode !== "uefi") return ec2Error("InvalidParameterCombination", "TpmSupport v2.0 requires BootMode uefi");
    for (const device of image.blockDevices) {
      const snapshot = device.snapshotId === undefined ? undefined : this.ebs.snapshot(device.snapshotId);
      if (snapshot !== undefined && snapshot.status !== "completed") {
        return ec2Error("IncorrectState", `Snapshot ${snapshot.id} is in state ${snapshot.status === "sealing" ? "pending" : snapshot.status}, not completed`);
      }
      // EbsBlockDevice (EC2 API reference): VolumeSize must be equal to or larger than the snapshot size.
      if (snapshot !== undefined && device.volumeSize !== undefined && device.volumeSize < snapshot.volumeSize) {
        return ec2Error("InvalidBlockDeviceMapping", `Volume of size ${device.volumeSize}GB is smaller than snapshot '${snapshot.id}', expect size >= ${snapshot.volumeSize}GB`);
      }
      // EbsBlockDevice: Iops is required for io1 and io2 volumes.
      if ((device.volumeType === "io1" || device.volumeType === "io2") && device.iops === undefined) {
        return ec2Error("InvalidParameterCombination", `The parameter iops must be specified for ${device.volumeType} volumes.`);
      }
    }
    // RegisterImage: the root device name must be one of the block device mapping's device names.
    if (image.rootDeviceName !== undefined && image.blockDevices.length > 0 && !image.blockDevices.some((d) => d.deviceName === image.rootDeviceName)) {
      return ec2Error("InvalidBlockDeviceMapping", `The root device name ${image.rootDeviceName} is not in the block device mapping`);
    }
    const answer = await forward();
    const imageId = elementText(answer.body.toString(), "imageId");
    if (answer.status < 300 && imageId !== undefined) this.registered.set(imageId, image);
    return answer;
  }

  /** moto's DescribeImages with each registered image's own mapping and attributes. */
  private describe(answer: RawAnswer): RawAnswer {
    const document = rewriteItems(answer.body.toString(), "imagesSet", (item) => {
      const image = this.registered.get(elementText(item, "imageId") ?? "");
      if (image === undefined) {
        // An image EC2 made (CreateImage, CopyImage): its snapshots are readable through EBS direct, as on AWS.
        for (const [, id] of item.matchAll(/<snapshotId>(snap-[0-9a-f]+)<\/snapshotId>/g)) this.ebs.knowEc2Snapshot(id ?? "");
        return item;
      }
      const fields = ["blockDeviceMapping", "rootDeviceName", "rootDeviceType", "architecture", "bootMode", "enaSupport", "imdsSupport", "tpmSupport", "virtualizationType", "sriovNetSupport"];
      const element = (name: string, value: string | boolean | number | undefined): string => (value === undefined ? "" : `<${name}>${escapeXml(String(value))}</${name}>`);
      const devices = image.blockDevices.map((d) => `<item>${element("deviceName", d.deviceName)}<ebs>${element("snapshotId", d.snapshotId)}${element("volumeSize", d.volumeSize)}${element("volumeType", d.volumeType)}${element("deleteOnTermination", d.deleteOnTermination)}</ebs></item>`).join("");
      const added = `<blockDeviceMapping>${devices}</blockDeviceMapping>${element("rootDeviceName", image.rootDeviceName)}<rootDeviceType>ebs</rootDeviceType>`
        + element("architecture", image.architecture) + element("bootMode", image.bootMode) + element("enaSupport", image.enaSupport) + element("imdsSupport", image.imdsSupport)
        + element("tpmSupport", image.tpmSupport) + element("virtualizationType", image.virtualizationType) + element("sriovNetSupport", image.sriovNetSupport);
      const rest = withoutElements(item, fields);
      return rest.slice(0, -"</item>".length) + added + "</item>";
    });
    return { ...answer, body: Buffer.from(document) };
  }
}

/** A ModifyImageAttribute that adds the group "all" (either of the API's two ways to say it). */
function makesPublic(params: URLSearchParams): boolean {
  for (const [name, value] of params) {
    if (/^LaunchPermission\.Add\.\d+\.Group$/.test(name) && value === "all") return true;
    if (/^UserGroup\.\d+$/.test(name) && value === "all" && params.get("OperationType") === "add") return true;
  }
  return false;
}
