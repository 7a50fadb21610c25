import { GetPasswordDataCommand } from "@aws-sdk/client-ec2";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { decryptPasswordData } from "../../../windows/generalize.js";
import type { AwsClients } from "../aws-clients.js";
import { awsEventually } from "../aws-errors.js";
import { pollUntil } from "../poll.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildInstance } from "./launch-instance.js";
import type { TemporaryKeyPair } from "./temporary-key-pair.js";

/**
 * Windows with `windows.get_password`: the Administrator password EC2 encrypted with the
 * build's RSA key, polled until the launch agent has set it, decrypted in memory. It is
 * registered as a secret first (so no output can show it), and shown only through the
 * `revealSecret` the CLI passes for --show-password.
 */
export const windowsPassword: Step<AmazonEbsBuildRequest & { aws: AwsClients; instance: BuildInstance; keyPair: TemporaryKeyPair }, object, AmazonEbsFacts> = {
  name: "password (Windows)",
  plan: () => ({ calls: ["ec2:GetPasswordData (read-only)"], creates: [], note: "decrypted in memory; shown only with --show-password" }),
  run: async (ctx, { builder, aws: clients, instance, keyPair, secrets }) => {
    const data = await pollUntil(`the Administrator password of ${instance.id}`, async () => {
      const answer = await awsEventually(`reading the password data of ${instance.id} (ec2:GetPasswordData)`, () => clients.ec2.send(new GetPasswordDataCommand({ InstanceId: instance.id }), { abortSignal: ctx.signal }), ctx.signal);
      const text = answer.PasswordData?.trim() ?? "";
      return text === "" ? undefined : text;
    }, { signal: ctx.signal, report: ctx.report, delaySeconds: Math.max(builder.wait.delay_seconds, 0.1), timeoutSeconds: builder.windows.password_timeout });
    const password = decryptPasswordData(data, keyPair.privateKeyObject);
    secrets?.addSecret(password);
    if (secrets?.reveal !== undefined) {
      secrets.reveal(`Administrator password of ${instance.id}: ${password}`);
      return { output: {}, summary: "retrieved and shown (--show-password)" };
    }
    return { output: {}, summary: "retrieved and decrypted (kiln build --show-password shows it)" };
  },
};
