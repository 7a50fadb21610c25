import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { deflateRawSync } from "node:zlib";
import { auditImage } from "./audit-image.js";
import type { Finding } from "./finding.js";

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** A zip archive as zip(1) writes it: a local header and deflated data per member, then the central directory. */
function zipOf(members: { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of members) {
    const packed = deflateRawSync(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(8, 8);
    local.writeUInt32LE(crc32(data), 14); local.writeUInt32LE(packed.length, 18); local.writeUInt32LE(data.length, 22); local.writeUInt16LE(name.length, 26);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0); entry.writeUInt16LE(20, 4); entry.writeUInt16LE(20, 6); entry.writeUInt16LE(8, 10);
    entry.writeUInt32LE(crc32(data), 16); entry.writeUInt32LE(packed.length, 20); entry.writeUInt32LE(data.length, 24); entry.writeUInt16LE(name.length, 28); entry.writeUInt32LE(offset, 42);
    parts.push(local, Buffer.from(name), packed);
    central.push(entry, Buffer.from(name));
    offset += 30 + name.length + packed.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(members.length, 8); end.writeUInt16LE(members.length, 10); end.writeUInt32LE(directory.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}

/** An ar archive (a .deb is one): "!<arch>\n", then a 60-byte header and the data of each member. */
function arOf(members: { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [Buffer.from("!<arch>\n")];
  for (const { name, data } of members) {
    parts.push(Buffer.from(`${`${name}/`.padEnd(16)}${"0".padEnd(12)}${"0".padEnd(6)}${"0".padEnd(6)}${"100644".padEnd(8)}${String(data.length).padEnd(10)}\`\n`), data);
    if (data.length % 2 === 1) parts.push(Buffer.from("\n"));
  }
  return Buffer.concat(parts);
}

const where = (findings: readonly Finding[]): string[] => findings.filter((f) => f.severity !== "info")
  .map((f) => `${f.rule.id} ${f.location.kind === "file" ? f.location.path : `@${f.location.offset}`}`).sort();

describe("a key inside an archive inside a file is found (zip, .deb, a .tgz inside a tar or a .tgz)", { timeout: 5 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-attack-containers-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("looks inside members of zip, ar and tar archives, compressed or nested, in an image, a directory and a tarball", async () => {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "id_ed25519")]);
    const key = readFileSync(join(dir, "id_ed25519"));
    const work = join(dir, "work");
    mkdirSync(work);
    writeFileSync(join(work, "id_ed25519"), key);
    execFileSync("tar", ["-C", work, "-czf", join(work, "inner.tgz"), "id_ed25519"]);
    execFileSync("xz", ["-k", join(work, "id_ed25519")]);
    const tree = join(dir, "tree");
    mkdirSync(join(tree, "srv"), { recursive: true });
    writeFileSync(join(tree, "srv/keys.zip"), zipOf([{ name: "readme.txt", data: Buffer.from("nothing\n") }, { name: "id_ed25519", data: key }]));
    writeFileSync(join(tree, "srv/pkg.deb"), arOf([{ name: "debian-binary", data: Buffer.from("2.0\n") }, { name: "data.tar.xz", data: readFileSync(join(work, "id_ed25519.xz")) }]));
    execFileSync("tar", ["-C", work, "-cf", join(tree, "srv/backup.tar"), "inner.tgz"]);
    execFileSync("tar", ["-C", work, "-czf", join(tree, "srv/outer.tgz"), "inner.tgz"]);
    writeFileSync(join(tree, "srv/zip-in-tgz"), readFileSync(join(tree, "srv/keys.zip")));
    execFileSync("tar", ["-C", join(tree, "srv"), "-czf", join(tree, "srv/zipped.tgz"), "zip-in-tgz"]);
    rmSync(join(tree, "srv/zip-in-tgz"));
    const expected = ["backup.tar", "keys.zip", "outer.tgz", "pkg.deb", "zipped.tgz"].map((name) => `private-key /srv/${name}`);
    const image = join(dir, "x.raw");
    execFileSync("mke2fs", ["-q", "-t", "ext4", "-d", tree, image, "16M"]);
    assert.deepEqual(where((await auditImage(image, { failOn: "critical" })).findings), expected);
    assert.deepEqual(where((await auditImage(tree, { failOn: "critical" })).findings), expected);
    const tarball = join(dir, "x.tar");
    execFileSync("tar", ["-C", tree, "-cf", tarball, "."]);
    assert.deepEqual(where((await auditImage(tarball, { failOn: "critical" })).findings), expected);
  });
});
