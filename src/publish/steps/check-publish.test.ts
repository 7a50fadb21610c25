import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GetEbsDefaultKmsKeyIdCommand, GetEbsEncryptionByDefaultCommand } from "@aws-sdk/client-ec2";
import type { AwsClients } from "../../builders/amazon-ebs/aws-clients.js";
import { KilnError } from "../../errors.js";
import { checkDefaultEncryption } from "./check-publish.js";

describe("check AWS access: EBS encryption by default before an upload that leaves the account", () => {
  /** EC2 that answers the two reads as an account with these settings would (or refuses them). */
  const ec2 = (on: boolean | "denied", key = "alias/aws/ebs"): AwsClients => ({
    region: "eu-west-1",
    ec2: {
      send: (command: object) => {
        if (on === "denied") return Promise.reject(Object.assign(new Error("not allowed"), { name: "UnauthorizedOperation", $metadata: { httpStatusCode: 403 } }));
        if (command instanceof GetEbsEncryptionByDefaultCommand) return Promise.resolve({ EbsEncryptionByDefault: on });
        if (command instanceof GetEbsDefaultKmsKeyIdCommand) return Promise.resolve({ KmsKeyId: key });
        return Promise.reject(new Error(`unexpected ${command.constructor.name}`));
      },
    },
  }) as unknown as AwsClients;
  const signal = new AbortController().signal;
  const none = (): void => undefined;

  it("refuses a public image when encryption by default would encrypt it (AWS refuses encrypted public images)", async () => {
    await assert.rejects(checkDefaultEncryption(ec2(true), { users: [], public: true }, signal, none), (e: unknown) => e instanceof KilnError && e.code === "KILN_ENCRYPTION");
    await checkDefaultEncryption(ec2(false), { users: [], public: true }, signal, none);
  });

  it("refuses sharing with accounts under the AWS-managed default key; a customer-managed default key is fine", async () => {
    await assert.rejects(checkDefaultEncryption(ec2(true), { users: ["210987654321"], public: false }, signal, none), (e: unknown) => e instanceof KilnError && e.code === "KILN_ENCRYPTION");
    await checkDefaultEncryption(ec2(true, "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"), { users: ["210987654321"], public: false }, signal, none);
  });

  it("warns, and goes on, when the credentials may not read the setting", async () => {
    const warned: string[] = [];
    await checkDefaultEncryption(ec2("denied"), { users: [], public: true }, signal, (line) => warned.push(line));
    assert.equal(warned.length, 1);
    assert.match(warned[0] ?? "", /UnauthorizedOperation/);
  });
});
