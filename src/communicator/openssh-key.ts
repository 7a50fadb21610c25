import { createHash, randomBytes, type KeyObject } from "node:crypto";

/** `SHA256:…` of an SSH public key blob, as ssh-keygen -l and sshd print it. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** An SSH wire-format string: a 32-bit length, then the bytes. */
function field(bytes: Buffer | string): Buffer {
  const body = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

/** `ssh-ed25519 AAAA… comment`, the line authorized_keys and ImportKeyPair take. */
export function ed25519PublicLine(publicKey: KeyObject, comment: string): string {
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url");
  return `ssh-ed25519 ${Buffer.concat([field("ssh-ed25519"), field(raw)]).toString("base64")} ${comment}`;
}

/** An SSH mpint: big-endian, with a leading zero byte when the top bit is set. */
function mpint(bytes: Buffer): Buffer {
  return field((bytes[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

/** `ssh-rsa AAAA… comment`, for RSA keys (Windows instances, whose password data needs RSA). */
export function rsaPublicLine(publicKey: KeyObject, comment: string): string {
  const jwk = publicKey.export({ format: "jwk" });
  const blob = Buffer.concat([field("ssh-rsa"), mpint(Buffer.from(jwk.e ?? "", "base64url")), mpint(Buffer.from(jwk.n ?? "", "base64url"))]);
  return `ssh-rsa ${blob.toString("base64")} ${comment}`;
}

/**
 * The private key in OpenSSH's own format (openssh-key-v1, unencrypted), which ssh2 and OpenSSH
 * read; Node exports ed25519 only as PKCS#8, which ssh2 does not. Kept in memory by callers.
 */
export function ed25519OpenSshPrivateKey(privateKey: KeyObject, comment: string): string {
  const jwk = privateKey.export({ format: "jwk" });
  const seed = Buffer.from(jwk.d ?? "", "base64url");
  const pub = Buffer.from(jwk.x ?? "", "base64url");
  const publicBlob = Buffer.concat([field("ssh-ed25519"), field(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([check, check, field("ssh-ed25519"), field(pub), field(Buffer.concat([seed, pub])), field(comment)]);
  const padding = Buffer.from(Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, i) => i + 1));
  secret = Buffer.concat([secret, padding]);
  const blob = Buffer.concat([Buffer.from("openssh-key-v1\0"), field("none"), field("none"), field(""), Buffer.from([0, 0, 0, 1]), field(publicBlob), field(secret)]);
  const lines = blob.toString("base64").match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`;
}
