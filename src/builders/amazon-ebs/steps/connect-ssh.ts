import { GetConsoleOutputCommand } from "@aws-sdk/client-ec2";
import { KilnError } from "../../../errors.js";
import type { Communicator } from "../../../communicator/communicator.js";
import { SshCommunicator } from "../../../communicator/ssh-communicator.js";
import { WindowsCommunicator } from "../../../communicator/windows-communicator.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step, StepContext } from "../../../pipeline/step.js";
import type { AmazonEbsBuilderConfig } from "../../../template/schema.js";
import type { AwsClients } from "../aws-clients.js";
import { awsCode, awsEventually } from "../aws-errors.js";
import { pollUntil } from "../poll.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildInstance } from "./launch-instance.js";
import type { TemporaryKeyPair } from "./temporary-key-pair.js";
import { addressFor, loginUser, type SshInterface } from "../ssh-address.js";
import { waitPolicy } from "../wait-policy.js";

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
export const connectSsh: Step<AmazonEbsBuildRequest & { aws: AwsClients; instance: BuildInstance; keyPair: TemporaryKeyPair; sshInterface: SshInterface }, { communicator: Communicator }, AmazonEbsFacts> = {
  name: "connect over SSH",
  plan: ({ builder, ssh }) => ({ calls: ["ec2:GetConsoleOutput (read-only)"], creates: [], note: `${loginUser(builder)}@${ssh.address}:${builder.ssh_port}, host key pinned from the console when printed` }),
  run: async (ctx, { builder, aws: clients, instance, keyPair, sshInterface }) => {
    // The address the security group was opened for; ssh_host only where the template says so.
    const host = builder.ssh_host ?? addressFor(instance.id, instance.addresses, sshInterface);
    const pinned = await printedFingerprints(ctx, clients, instance.id, builder);
    const windows = builder.platform === "windows";
    const target = {
      host, port: builder.ssh_port, username: loginUser(builder), privateKey: keyPair.privateKey, pinned, timeoutSeconds: builder.ssh_timeout ?? (windows ? 1800 : 300),
    };
    const context = { signal: ctx.signal, report: ctx.report };
    const ssh = windows ? await WindowsCommunicator.connect(target, context) : await SshCommunicator.connect(target, context);
    ctx.cleanup.defer(`close SSH connection to ${host}`, () => { ssh.close(); return Promise.resolve(); });
    return { output: { communicator: ssh }, summary: `${ssh.description} (host key ${ssh.hostKey}${pinned.length > 0 ? ", pinned" : ", first use"})` };
  },
};

/**
 * The host key fingerprints the instance printed, read from its console until they appear or
 * `ssh_host_key_wait` seconds pass (they come late in boot, and EC2 publishes the console with
 * a delay); none if they never do, and the connection then trusts the first key it sees.
 */
async function printedFingerprints(ctx: StepContext, clients: AwsClients, instanceId: string, builder: AmazonEbsBuilderConfig): Promise<string[]> {
  // The latest output where the instance type supports it (Nitro); the buffered one elsewhere.
  let latest = true;
  const console = async (): Promise<string | undefined> => {
    try {
      return (await awsEventually(`reading the console of ${instanceId} (ec2:GetConsoleOutput)`, () => clients.ec2.send(new GetConsoleOutputCommand({ InstanceId: instanceId, ...(latest ? { Latest: true } : {}) }), { abortSignal: ctx.signal }), ctx.signal)).Output;
    } catch (error) {
      if (!latest || awsCode(error) !== "UnsupportedOperation") throw error;
      latest = false;
      return console();
    }
  };
  const read = async (): Promise<string[] | undefined> => {
    const output = { Output: await console() };
    const found = consoleFingerprints(Buffer.from(output.Output ?? "", "base64").toString("utf8"));
    return found.length > 0 ? found : undefined;
  };
  // Windows prints them only once its user data has installed OpenSSH: as long as SSH may take.
  const wait = builder.ssh_host_key_wait ?? (builder.platform === "windows" ? builder.ssh_timeout ?? 1800 : 120);
  if (wait === 0) return (await read()) ?? [];
  ctx.report.info(`waiting up to ${wait}s for the instance to print its host keys on the console`);
  try {
    return await pollUntil(`host key fingerprints on the console of ${instanceId}`, read, {
      signal: ctx.signal, report: ctx.report, delaySeconds: waitPolicy(builder, "instance").delaySeconds, timeoutSeconds: wait, setting: "ssh_host_key_wait",
    });
  } catch (error) {
    if (error instanceof KilnError && error.code === "KILN_WAIT_TIMEOUT") return [];
    throw error;
  }
}
