import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runKiln } from "../../test/helpers/kiln-process.js";
import { auditImage } from "./audit-image.js";
import type { Finding } from "./finding.js";

// An attacker's image: private keys stored encoded, as tools write them. A Kubernetes Secret's
// `data:` is base64 (of the key at any offset in a blob: three alignments), xxd -p writes hex,
// Windows PowerShell's `>` writes UTF-16LE, and some editors UTF-16BE with a byte order mark.
const run = (command: string, args: string[], input?: Buffer): Buffer => execFileSync(command, args, { ...(input === undefined ? {} : { input }), stdio: ["pipe", "pipe", "ignore"], maxBuffer: 64 << 20 });
const report = (findings: readonly Finding[]): string[] => findings.filter((f) => f.severity !== "info")
  .map((f) => `${f.rule.id} ${f.location.kind === "file" ? f.location.path : f.location.area}`).sort();

describe("private keys stored encoded are found, and judged by what they decode to", { timeout: 5 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-attack-encoded-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", join(dir, "k")]);
  run("ssh-keygen", ["-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-C", "", "-f", join(dir, "rsa")]);
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "correct horse", "-C", "", "-f", join(dir, "locked")]);
  run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "cert.key"), "-out", join(dir, "cert.pem"), "-subj", "/CN=decoy", "-days", "1"]);
  const key = readFileSync(join(dir, "k"));
  const rsa = readFileSync(join(dir, "rsa"));
  const b64 = (bytes: Buffer): string => bytes.toString("base64");
  const keys: Record<string, Buffer> = {
    "srv/k.b64": run("base64", ["-w0"], key),
    "srv/k-wrapped.b64": run("base64", [], rsa),
    // The key at offset 1 and 2 of a base64'd blob: the encoded marker differs with the offset mod 3.
    "srv/blob1.b64": Buffer.from(b64(Buffer.concat([Buffer.from("x"), key]))),
    "srv/blob2.b64": Buffer.from(b64(Buffer.concat([Buffer.from("\n\n"), rsa]))),
    "etc/secret.yaml": Buffer.from(`apiVersion: v1\nkind: Secret\ndata:\n  id_ed25519: ${b64(key)}\n  tls.crt: ${b64(readFileSync(join(dir, "cert.pem")))}\n`),
    "srv/k.hex": Buffer.from(run("xxd", ["-p"], key).toString("latin1").replace(/\n/g, "")),
    "srv/k-lines.hex": run("xxd", ["-p"], rsa),
    "srv/k.HEX": Buffer.from(key.toString("hex").toUpperCase()),
    "srv/k.u16": run("iconv", ["-t", "UTF-16LE"], key),
    "srv/k.u16be": Buffer.concat([Buffer.from([0xfe, 0xff]), run("iconv", ["-t", "UTF-16BE"], rsa)]),
    "srv/locked.b64": Buffer.from(b64(readFileSync(join(dir, "locked")))),
  };
  // What decodes to no private key is no finding: a certificate, a public key, a marker alone.
  const decoys: Record<string, Buffer> = {
    "srv/cert.b64": Buffer.from(b64(readFileSync(join(dir, "cert.pem")))),
    "srv/cert.hex": Buffer.from(readFileSync(join(dir, "cert.pem")).toString("hex")),
    "srv/pub.u16": run("iconv", ["-t", "UTF-16LE"], Buffer.from(`${readFileSync(join(dir, "cert.pem"), "latin1")}${readFileSync(join(dir, "k.pub"), "latin1")}`)),
    "srv/marker.b64": Buffer.from(`${b64(Buffer.from("-----BEGIN OPENSSH PRIVATE KEY-----\n"))}\n`),
    "srv/marker.u16": Buffer.from("-----BEGIN OPENSSH PRIVATE KEY-----\0", "utf16le"),
  };
  const expected = [
    ...Object.keys(keys).filter((p) => p !== "srv/locked.b64").map((p) => `private-key /${p}`),
    "encrypted-private-key /srv/locked.b64",
  ].sort();
  const tree = join(dir, "tree");
  for (const [path, bytes] of Object.entries({ ...keys, ...decoys })) {
    mkdirSync(join(tree, path, ".."), { recursive: true });
    writeFileSync(join(tree, path), bytes);
  }
  const image = join(dir, "img.raw");
  run("mke2fs", ["-q", "-t", "ext4", "-d", tree, image, "64M"]);

  it("finds base64 (three alignments, wrapped or not), hex (either case, wrapped or not) and UTF-16 (LE, BE with BOM) keys in a directory", async () => {
    const findings = (await auditImage(tree, { failOn: "low" })).findings;
    assert.deepEqual(report(findings), expected);
    assert.match(findings.find((f) => f.location.kind === "file" && f.location.path === "/srv/k.b64")?.message ?? "", /base64/);
    assert.match(findings.find((f) => f.location.kind === "file" && f.location.path === "/srv/k.hex")?.message ?? "", /hex/);
    assert.match(findings.find((f) => f.location.kind === "file" && f.location.path === "/srv/k.u16")?.message ?? "", /UTF-16LE/);
    assert.match(findings.find((f) => f.location.kind === "file" && f.location.path === "/srv/k.u16be")?.message ?? "", /UTF-16BE/);
    for (const f of findings) {
      for (const secret of [b64(key).slice(40, 60), key.toString("hex").slice(80, 100), key.toString("latin1").split("\n")[1]?.slice(0, 20) ?? "x"]) {
        assert.ok(!`${f.message} ${f.excerpt ?? ""}`.includes(secret), `${f.message} ${f.excerpt ?? ""}`);
      }
    }
  });

  it("finds the same keys in an ext4 image, through the raw scan's prefilter", async () => {
    assert.deepEqual(report((await auditImage(image, { failOn: "low" })).findings), expected);
  });

  it("finds an encoded key in the image's free space as recoverable deleted data", async () => {
    const copy = join(dir, "free.raw");
    run("mke2fs", ["-q", "-t", "ext4", "-d", join(dir, "tree", "etc"), copy, "16M"]);
    const handle = await open(copy, "r+");
    const blobs = [b64(key), key.toString("hex"), key.toString("latin1")].map((s, i) => (i === 2 ? run("iconv", ["-t", "UTF-16LE"], key) : Buffer.from(s)));
    for (const [i, blob] of blobs.entries()) await handle.write(blob, 0, blob.length, (12 + 4 * i) * 1024 * 1024 + 1000 + i);
    await handle.close();
    assert.deepEqual(report((await auditImage(copy, { failOn: "low" })).findings), ["deleted-secret unallocated", "deleted-secret unallocated", "deleted-secret unallocated", "private-key /secret.yaml"]);
  });

  it("the kiln CLI fails on them, naming the encoding", async () => {
    const cli = await runKiln(["audit", image, "--fail-on", "low"]);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stdout, /base64/);
  });
});
