import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { auditImage } from "./audit-image.js";
import type { Finding } from "./finding.js";

// An attacker's image: a secret in the spare room of a file's extent tree, which the kernel and
// e2fsck read only up to the node's eh_entries. In a leaf block (after the last extent, before
// the tail) and in the inode's own i_block (the slots past the root's entries), the bytes are kept
// by every copy of the image and read back with dd, yet no read of the file returns them.
const run = (command: string, args: string[]): string => execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
const notInfo = (findings: readonly Finding[]): Finding[] => findings.filter((f) => f.severity !== "info");
// debugfs names i_block's last three words by their block-map roles.
const word = (n: number): string => `block[${["IND", "DIND", "TIND"][n - 12] ?? n}]`;
const token = ["ghp_", "Xq7Lm2Np9Rt4Vw8Yz1Bc", "5Df3Gh6Jk0Ms2Pu4"].join("");

describe("bytes in an extent tree's spare room are judged as hidden data", { timeout: 5 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-attack-extent-slack-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "key")]);
  const key = readFileSync(join(dir, "key"));
  const imageOf = (name: string, features: string): string => {
    const tree = join(dir, name);
    mkdirSync(join(tree, "srv"), { recursive: true });
    // Data every other block: seven extents, more than the inode's four slots, so a leaf block.
    for (let block = 0; block < 13; block += 2) execFileSync("dd", ["if=/dev/urandom", `of=${join(tree, "srv/fragmented")}`, "bs=4096", "count=1", `seek=${block}`, "conv=notrunc", "status=none"]);
    writeFileSync(join(tree, "srv/empty"), "");
    writeFileSync(join(tree, "srv/small"), "hi\n");
    const image = join(dir, `${name}.raw`);
    execFileSync("mke2fs", ["-q", "-t", "ext4", "-O", features, "-b", "4096", "-d", tree, image, "64M"]);
    return image;
  };
  const clean = (image: string): void => { execFileSync("e2fsck", ["-fn", image], { stdio: "ignore" }); };

  it("finds a key after the last extent of an extent leaf block", async () => {
    // The leaf's tail checksum covers its spare room: without metadata_csum e2fsck has nothing to object to.
    const image = imageOf("leaf", "^metadata_csum");
    const leaf = Number(/\(ETB0\):(\d+)/.exec(run("debugfs", ["-R", "stat /srv/fragmented", image]))?.[1]);
    assert.ok(leaf > 0, "the fragmented file has an extent leaf block");
    assert.match(run("debugfs", ["-R", "ex /srv/fragmented", image]), /1\/\s*1\s+7\/\s*7/);
    execFileSync("dd", [`of=${image}`, "bs=1", `seek=${leaf * 4096 + 12 + 7 * 12 + 100}`, "conv=notrunc", "status=none"], { input: key });
    clean(image);
    const findings = notInfo((await auditImage(image, { failOn: "low" })).findings);
    assert.deepEqual(findings.map((f) => `${f.rule.id} ${f.location.kind}`), ["deleted-secret raw"]);
    assert.match(findings[0]?.message ?? "", /\/srv\/fragmented/);
  });

  it("finds a token in the unused extent slots of an inode's i_block", async () => {
    const image = imageOf("iblock", "metadata_csum");
    // i_block[3..14] are the root's four entry slots; an empty file uses none of them. debugfs
    // writes the words and the inode's checksum, so e2fsck finds nothing wrong.
    const bytes = Buffer.alloc(48);
    bytes.write(token);
    for (let n = 0; n < 12; n++) run("debugfs", ["-w", "-R", `sif /srv/empty ${word(3 + n)} ${bytes.readUInt32LE(n * 4)}`, image]);
    assert.ok(readFileSync(image).includes(token), "the whole token is in the inode");
    assert.equal(run("debugfs", ["-R", "dump /srv/empty /dev/stdout", image]), "");
    clean(image);
    const findings = notInfo((await auditImage(image, { failOn: "low" })).findings);
    assert.deepEqual(findings.map((f) => `${f.rule.id} ${f.location.kind}`), ["deleted-secret raw"]);
    assert.match(findings[0]?.message ?? "", /\/srv\/empty \(its inode record\)/);
  });

  it("finds an AWS key id in the slots past a one-extent file's only entry", async () => {
    const image = imageOf("slots", "metadata_csum");
    const id = Buffer.from(["AKIA", "QX7LM2NP5RT4VW3Y"].join(""));
    for (let n = 0; n < 5; n++) run("debugfs", ["-w", "-R", `sif /srv/small ${word(6 + n)} ${id.readUInt32LE(n * 4)}`, image]);
    assert.ok(readFileSync(image).includes(id), "the whole key id is in the inode");
    assert.equal(run("debugfs", ["-R", "cat /srv/small", image]), "hi\n");
    clean(image);
    const findings = notInfo((await auditImage(image, { failOn: "low" })).findings);
    assert.deepEqual(findings.map((f) => `${f.rule.id} ${f.location.kind}`), ["aws-key-id raw"]);
    assert.match(findings[0]?.message ?? "", /\/srv\/small \(its inode record\)/);
  });

  it("judges nothing in a sound extent tree", async () => {
    const image = imageOf("sound", "metadata_csum");
    clean(image);
    assert.deepEqual(notInfo((await auditImage(image, { failOn: "low" })).findings).map((f) => f.rule.id), []);
  });
});
