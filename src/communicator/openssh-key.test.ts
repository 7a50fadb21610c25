import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import ssh2 from "ssh2";
import { tempDirectory } from "../../test/helpers/temp.js";
import { ed25519OpenSshPrivateKey, ed25519PublicLine } from "./openssh-key.js";

describe("OpenSSH ed25519 keys made in memory", () => {
  it("are read by ssh2 and by OpenSSH's own ssh-keygen, which derives the same public key", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const pem = ed25519OpenSshPrivateKey(privateKey, "kiln-test");
    const parsed = ssh2.utils.parseKey(pem);
    assert.ok(!(parsed instanceof Error), parsed instanceof Error ? parsed.message : "");
    const dir = await tempDirectory();
    await writeFile(join(dir, "key"), pem, { mode: 0o600 });
    const derived = execFileSync("ssh-keygen", ["-y", "-f", join(dir, "key")], { encoding: "utf8" }).trim();
    assert.equal(derived.split(" ").slice(0, 2).join(" "), ed25519PublicLine(publicKey, "x").split(" ").slice(0, 2).join(" "));
  });
});
