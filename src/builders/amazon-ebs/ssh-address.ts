import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import type { Instance } from "@aws-sdk/client-ec2";
import { KilnError } from "../../errors.js";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";

export type SshInterface = NonNullable<AmazonEbsBuilderConfig["ssh_interface"]>;

/** The instance's addresses, as EC2 describes them once it runs. */
export interface InstanceAddresses {
  publicIp?: string;
  privateIp?: string;
  publicDns?: string;
  privateDns?: string;
}

/**
 * Which address SSH connects to: the template's `ssh_interface`, else the public address when
 * the instance gets one (the template asks for it, or the subnet gives one), else the private one.
 */
export function chosenInterface(builder: Pick<AmazonEbsBuilderConfig, "ssh_interface" | "associate_public_ip_address">, subnetGivesPublic: boolean): SshInterface {
  if (builder.ssh_interface !== undefined) return builder.ssh_interface;
  return builder.associate_public_ip_address ?? subnetGivesPublic ? "public_ip" : "private_ip";
}

export function isPrivate(choice: SshInterface): boolean {
  return choice === "private_ip" || choice === "private_dns";
}

export function addressesOf(instance: Instance): InstanceAddresses {
  const given = (value: string | undefined): string | undefined => (value === undefined || value === "" ? undefined : value);
  const found = { publicIp: given(instance.PublicIpAddress), privateIp: given(instance.PrivateIpAddress), publicDns: given(instance.PublicDnsName), privateDns: given(instance.PrivateDnsName) };
  return Object.fromEntries(Object.entries(found).filter(([, v]) => v !== undefined));
}

/** The address of that interface, or one clear error saying why the instance has none. */
export function addressFor(instanceId: string, addresses: InstanceAddresses, choice: SshInterface): string {
  const address = { public_ip: addresses.publicIp, private_ip: addresses.privateIp, public_dns: addresses.publicDns, private_dns: addresses.privateDns }[choice];
  if (address !== undefined) return address;
  throw new KilnError("KILN_NO_ADDRESS", `instance ${instanceId} has no ${choice.replace("_", " ").replace("ip", "IP address").replace("dns", "DNS name")} to connect to (ssh_interface ${choice})`, {
    hint: isPrivate(choice) ? "check the subnet" : "set associate_public_ip_address: true, use a subnet that gives public addresses, or ssh_interface: private_ip from inside the VPC",
  });
}

/** The image's login user: the template's, else Administrator on Windows, root elsewhere. */
export function loginUser(builder: Pick<AmazonEbsBuilderConfig, "ssh_username" | "platform">): string {
  return builder.ssh_username ?? (builder.platform === "windows" ? "Administrator" : "root");
}

/**
 * Whether this machine reaches `address` (IPv4) only by its default route, from the kernel's
 * table (/proc/net/route: hex, little-endian): then the VPC is likely not reachable from here
 * at all, and the address the kernel picks is not one the instance will see. Undefined where the
 * table cannot be read (not Linux, or IPv6).
 */
export function onlyByDefaultRoute(address: string, table?: string): boolean | undefined {
  const octets = address.split(".").map(Number);
  if (octets.length !== 4) return undefined;
  let text = table;
  try {
    text ??= readFileSync("/proc/net/route", "utf8");
  } catch {
    return undefined;
  }
  const target = ((octets[3] ?? 0) << 24 | (octets[2] ?? 0) << 16 | (octets[1] ?? 0) << 8 | (octets[0] ?? 0)) >>> 0;
  const matching = text.split("\n").slice(1).map((line) => line.trim().split(/\s+/)).filter((f) => f.length >= 8)
    .map((f) => ({ destination: parseInt(f[1] ?? "", 16) >>> 0, mask: parseInt(f[7] ?? "", 16) >>> 0 }))
    .filter((r) => ((target & r.mask) >>> 0) === r.destination);
  if (matching.length === 0) return undefined;
  return matching.every((r) => r.mask === 0);
}

/**
 * This machine's own address on its route toward `network` (a CIDR): the source address the
 * kernel would use. A UDP socket "connected" there sends nothing; it only picks the route.
 */
export async function addressToward(network: string): Promise<string> {
  const [base = ""] = network.split("/");
  const v6 = base.includes(":");
  const target = v6 ? `${base.replace(/::$/, "::")}1` : base.replace(/\d+$/, (last) => String(Math.min(Number(last) + 1, 254)));
  const socket = createSocket(v6 ? "udp6" : "udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.connect(9, target, () => resolve());
    });
    return socket.address().address;
  } catch (error) {
    throw new KilnError("KILN_NO_ADDRESS", `this machine has no route toward ${network}, where the build instance's private address is: ${error instanceof Error ? error.message : String(error)}`, {
      hint: "build from inside the VPC (or one connected to it), use a public address, or set temporary_security_group_source_cidrs",
    });
  } finally {
    socket.close();
  }
}
