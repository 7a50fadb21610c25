import { generateKeyPairSync } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DescribeKeyPairsCommand, ImportKeyPairCommand } from "@aws-sdk/client-ec2";
import type { KeyObject } from "node:crypto";
import { ed25519OpenSshPrivateKey, ed25519PublicLine, rsaPublicLine } from "../../../communicator/openssh-key.js";
import type { AmazonEbsFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import type { AwsClients } from "../aws-clients.js";
import type { AmazonEbsBuildRequest } from "../request.js";
import type { BuildJournal } from "../journal.js";
import { kilnTags, tagOnCreate } from "../tags.js";
import { createResource, ownedBy, track } from "../tracked-resource.js";

export interface TemporaryKeyPair {
  name: string;
  id: string;
  /** OpenSSH (ed25519) or PEM (RSA) text, in memory only: never written or printed. */
  privateKey: string;
  /** The same key, to decrypt a Windows password with. */
  privateKeyObject: KeyObject;
  type: "ed25519" | "rsa";
}

/**
 * A key made here; only its public half goes to AWS (ImportKeyPair). ed25519, or RSA 4096 for
 * Windows, where EC2 encrypts the Administrator password with the key pair's (RSA) public key.
 */
export const temporaryKeyPair: Step<AmazonEbsBuildRequest & { aws: AwsClients; journal: BuildJournal }, { keyPair: TemporaryKeyPair }, AmazonEbsFacts> = {
  name: "create temporary key pair",
  plan: ({ builder, buildId, tags }) => ({ calls: ["ec2:ImportKeyPair"], creates: [{ type: "key pair", name: `kiln-${buildId}`, tags: tags() }], note: builder.platform === "windows" ? "RSA 4096, made here" : "ed25519, made here" }),
  run: async (ctx, input) => {
    const { aws: clients, buildId, kilnVersion } = input;
    const type = input.builder.platform === "windows" ? "rsa" as const : "ed25519" as const;
    const { publicKey, privateKey } = type === "rsa" ? generateKeyPairSync("rsa", { modulusLength: 4096 }) : generateKeyPairSync("ed25519");
    const name = `kiln-${buildId}`;
    const imported = await createResource<{ KeyPairId?: string | undefined }>("importing the temporary key pair (ec2:ImportKeyPair)", (signal) => clients.ec2.send(new ImportKeyPairCommand({
      KeyName: name,
      PublicKeyMaterial: Buffer.from(type === "rsa" ? rsaPublicLine(publicKey, name) : ed25519PublicLine(publicKey, name)),
      TagSpecifications: tagOnCreate(["key-pair"], kilnTags(buildId, kilnVersion)),
    }), { abortSignal: signal }), {
      duplicate: "InvalidKeyPair.Duplicate",
      findOurs: async () => {
        const found = (await clients.ec2.send(new DescribeKeyPairsCommand({ KeyNames: [name] }))).KeyPairs?.[0];
        return found !== undefined && ownedBy(buildId, found.Tags) ? { KeyPairId: found.KeyPairId } : undefined;
      },
    });
    const id = imported.KeyPairId ?? name;
    await track(ctx, input, { type: "key-pair", id: name, temporary: true }, `delete key pair ${name}`);
    const privateKeyText = type === "rsa" ? privateKey.export({ type: "pkcs1", format: "pem" }).toString() : ed25519OpenSshPrivateKey(privateKey, name);
    if (input.debugKeysDirectory !== undefined) {
      // Asked for by --debug-keys to log in by hand while debugging: owner-only, and kept.
      await mkdir(input.debugKeysDirectory, { recursive: true, mode: 0o700 });
      const file = join(input.debugKeysDirectory, name);
      await writeFile(file, privateKeyText, { mode: 0o600, flag: "wx" });
      ctx.report.warn(`the temporary private key is in ${file} (--debug-keys): delete it when done`);
    }
    return {
      output: { keyPair: { name, id, privateKey: privateKeyText, privateKeyObject: privateKey, type } },
      summary: `${name} (${id}, ${type === "rsa" ? "RSA 4096" : "ed25519"}; the private key stays in memory${input.debugKeysDirectory === undefined ? "" : " and in --debug-keys"})`,
    };
  },
};
