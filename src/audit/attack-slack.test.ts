import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, symlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { auditImage } from "./audit-image.js";
import type { Finding } from "./finding.js";

// An attacker's image: a private key in bytes a live entry's blocks hold but its content does
// not (past i_size, in a preallocated extent, in a symlink's or a directory's block). Anyone with
// the image reads them with dd; the audit must not take them for the file's judged content.
const debugfs = (image: string, request: string): void => { execFileSync("debugfs", ["-w", "-R", request, image], { stdio: "ignore" }); };
const blockOf = (image: string, path: string): number => Number(execFileSync("debugfs", ["-R", `blocks ${path}`, image], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim().split(/\s+/)[0]);
const raw = (findings: readonly Finding[]): string[] => findings.filter((f) => f.severity !== "info").map((f) => `${f.rule.id} ${f.location.kind}`);

describe("bytes a live entry's blocks hold beyond its content are judged as hidden data", { timeout: 5 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-attack-slack-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "key")]);
  const key = readFileSync(join(dir, "key"));
  const imageOf = (name: string, fill: (tree: string) => void, features = "metadata_csum"): string => {
    const tree = join(dir, name);
    mkdirSync(join(tree, "srv"), { recursive: true });
    fill(tree);
    const image = join(dir, `${name}.raw`);
    execFileSync("mke2fs", ["-q", "-t", "ext4", "-O", features, "-b", "4096", "-d", tree, image, "16M"]);
    return image;
  };
  const clean = (image: string): void => { execFileSync("e2fsck", ["-fn", image], { stdio: "ignore" }); };

  it("finds a key past a file's size in its last block", async () => {
    const image = imageOf("tail", (tree) => writeFileSync(join(tree, "srv/blob"), Buffer.concat([Buffer.from("hello\n"), Buffer.alloc(200, 32), key, Buffer.alloc(4096, 32)]).subarray(0, 4096)));
    debugfs(image, "sif /srv/blob size 100");
    clean(image);
    assert.deepEqual(raw((await auditImage(image, { failOn: "critical" })).findings), ["deleted-secret raw"]);
  });

  it("finds a key in blocks mapped past a file's size", async () => {
    const image = imageOf("beyond", (tree) => writeFileSync(join(tree, "srv/blob"), Buffer.concat([Buffer.from("hello\n"), Buffer.alloc(3 * 4096, 32), key])));
    debugfs(image, "sif /srv/blob size 100");
    assert.deepEqual(raw((await auditImage(image, { failOn: "critical" })).findings), ["deleted-secret raw"]);
  });

  it("finds a key in a preallocated (uninitialized) extent, which reads as zeros", async () => {
    const image = imageOf("uninit", (tree) => writeFileSync(join(tree, "srv/blob"), key));
    // i_block[4]: the first extent's length; 0x8000 marks it uninitialized (fallocate -z leaves this).
    debugfs(image, "sif /srv/blob block[4] 0x8001");
    clean(image);
    assert.deepEqual(raw((await auditImage(image, { failOn: "critical" })).findings), ["deleted-secret raw"]);
  });

  it("finds a key in a symlink's block past its target, and in a directory block's unused space", async () => {
    const image = imageOf("entries", (tree) => {
      symlinkSync(`/opt/${"x".repeat(80)}`, join(tree, "srv/link"));
      mkdirSync(join(tree, "srv/dir"));
      writeFileSync(join(tree, "srv/dir/a"), "a\n");
    }, "^metadata_csum");
    const handle = await open(image, "r+");
    await handle.write(key, 0, key.length, blockOf(image, "/srv/link") * 4096 + 512);
    await handle.write(key, 0, key.length, blockOf(image, "/srv/dir") * 4096 + 1024);
    await handle.close();
    clean(image);
    assert.deepEqual(raw((await auditImage(image, { failOn: "critical" })).findings), ["deleted-secret raw", "deleted-secret raw"]);
  });

  it("finds a token in the unused bytes of a live inode's record, and still judges its extended attributes as attributes", async () => {
    const image = imageOf("inode", (tree) => {
      writeFileSync(join(tree, "srv/x"), "hi\n");
      writeFileSync(join(tree, "srv/y"), "hi\n");
      execFileSync("setfattr", ["-n", "user.note", "-v", "nothing to see", join(tree, "srv/y")]);
    }, "^metadata_csum");
    const token = ["ghp_", "R4nd0mT0k3nV4lu3sXyZ", "aBcDeFgHiJkLmNoP"].join("");
    const recordOf = (path: string): number => {
      const m = /located at block (\d+), offset (0x[0-9a-f]+)/.exec(execFileSync("debugfs", ["-R", `imap ${path}`, image], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
      return Number(m?.[1]) * 4096 + Number(m?.[2]);
    };
    const handle = await open(image, "r+");
    await handle.write(Buffer.from(token), 0, token.length, recordOf("/srv/x") + 200);
    await handle.close();
    clean(image);
    const findings = (await auditImage(image, { failOn: "critical" })).findings;
    assert.deepEqual(raw(findings), ["deleted-secret raw"]);
    assert.match(findings[0]?.message ?? "", /\/srv\/x \(its inode record\)/);
  });

  it("still judges a key in a file's content as the file's, and names in a directory as names", async () => {
    const image = imageOf("plain", (tree) => writeFileSync(join(tree, "srv/id_ed25519"), key));
    assert.deepEqual((await auditImage(image, { failOn: "critical" })).findings.map((f) => `${f.rule.id} ${f.location.kind === "file" ? f.location.path : "raw"}`), ["private-key /srv/id_ed25519"]);
  });
});
