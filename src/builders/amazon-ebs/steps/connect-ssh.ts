import { GetConsoleOutputCommand } from "@aws-sdk/client-ec2";
import type { Communicator } from "../../../communicator/communicator.js";
import { SshCommunicator } from "../../../communicator/ssh-communicator.js";
import type { Step } from "../../../pipeline/step.js";
import { aws, type AwsClients } from "../aws-clients.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildInstance } from "./launch-instance.js";
import type { TemporaryKeyPair } from "./temporary-key-pair.js";

/** The fingerprints in the block cloud-init (and kiln's first-boot script) print to the console. */
export function consoleFingerprints(console: string): string[] {
  const block = /-----BEGIN SSH HOST KEY FINGERPRINTS-----([\s\S]*?)-----END SSH HOST KEY FINGERPRINTS-----/.exec(console)?.[1] ?? "";
  return [...block.matchAll(/SHA256:[A-Za-z0-9+/]+/g)].map((m) => m[0]);
}

/**
 * Connects to the build instance over SSH with the temporary key. Host keys the instance
 * printed on its console are pinned (a different key is refused); without them the first key
 * seen is accepted, and the output says so.
 */
export const connectSsh: Step<AmazonEbsBuildRequest & { aws: AwsClients; instance: BuildInstance; keyPair: TemporaryKeyPair }, { communicator?: Communicator }> = {
  name: "connect over SSH",
  run: async (ctx, { builder, aws: clients, instance, keyPair }) => {
    if (builder.communicator === "none") return { output: {}, summary: "skipped (communicator none)" };
    const output = await aws(`reading the console of ${instance.id} (ec2:GetConsoleOutput)`, () => clients.ec2.send(new GetConsoleOutputCommand({ InstanceId: instance.id }), { abortSignal: ctx.signal }), ctx.signal);
    const pinned = consoleFingerprints(Buffer.from(output.Output ?? "", "base64").toString("utf8"));
    const host = builder.ssh_host ?? instance.publicIp ?? instance.privateIp ?? "";
    const ssh = await SshCommunicator.connect({
      host, port: builder.ssh_port, username: builder.ssh_username ?? "root", privateKey: keyPair.privateKey, pinned, timeoutSeconds: builder.ssh_timeout,
    }, { signal: ctx.signal, report: ctx.report });
    ctx.cleanup.defer(`close SSH connection to ${host}`, () => { ssh.close(); return Promise.resolve(); });
    return { output: { communicator: ssh }, summary: `${ssh.description} (host key ${ssh.hostKey}${pinned.length > 0 ? ", pinned" : ", first use"})` };
  },
};
