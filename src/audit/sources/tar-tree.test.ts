import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { KilnError } from "../../errors.js";
import type { ImageTree, TreeEntry } from "./image-tree.js";
import { DirectoryTree } from "./directory-tree.js";
import { TarTree } from "./tar-tree.js";

// At the top level: the helper's cleanup would run right after a before() hook.
const dir = await tempDirectory();
const tree = join(dir, "tree");
const longName = "n".repeat(100);
const longTarget = `/${"t".repeat(150)}`;
// ustar holds neither a 150-character link target nor a uid above 2097151.
const notUstar = ["/var/long-link", "/home/user/.ssh/id_ed25519"];

/** An image tree with every kind of entry tar has to carry. */
const fixture = `
set -e
mkdir -p "$1" && cd "$1"
mkdir -p etc usr/bin usr/lib/deep/er/still/deeper/than/a/hundred/characters/together/with/the/name var/log home/user/.ssh tmp
printf 'root:$6$salt$hash:19000:0:99999:7:::\\n' > etc/shadow && chown 0:42 etc/shadow && chmod 640 etc/shadow
ln etc/shadow etc/shadow.hard
ln -s /etc/shadow etc/shadow.sym
ln -s ../usr/lib/deep var/deep
ln -s ${longTarget} var/long-link
printf '#!/bin/sh\\n' > usr/bin/helper && chown 1000:1000 usr/bin/helper && chmod 4755 usr/bin/helper
printf 'long\\n' > usr/lib/deep/er/still/deeper/than/a/hundred/characters/together/with/the/name/${longName}
printf 'key\\n' > home/user/.ssh/id_ed25519 && chown 3000000:3000000 home/user/.ssh/id_ed25519 && chmod 600 home/user/.ssh/id_ed25519
chmod 1777 tmp
chmod 2755 var/log
: > var/log/empty
head -c 5242880 /dev/urandom > var/big.bin
mkfifo var/fifo
`;

interface Seen {
  entry: TreeEntry;
  sha256?: string;
}

/** What find(1) and the files themselves say the tree holds, in name order; later hard links as tar reports them. */
async function expectedEntries(root: string): Promise<Seen[]> {
  const lines = execFileSync("find", [".", "-printf", "%P\\t%y\\t%m\\t%U\\t%G\\t%s\\t%l\\t%i\\n"], { cwd: root, encoding: "utf8" }).split("\n").filter(Boolean);
  const rows = lines.map((line) => line.split("\t")).sort((a, b) => compareParts((a[0] ?? "").split("/"), (b[0] ?? "").split("/")));
  const firstByInode = new Map<string, string>();
  const seen: Seen[] = [];
  for (const [relative = "", y = "", mode = "", uid = "", gid = "", size = "", target = "", inode = ""] of rows) {
    const path = `/${relative}`;
    const entry: TreeEntry = { path, type: "other", mode: parseInt(mode, 8), uid: Number(uid), gid: Number(gid), size: 0 };
    if (y === "d") entry.type = "directory";
    if (y === "l") Object.assign(entry, { type: "symlink", linkTarget: target });
    if (y === "f" && firstByInode.has(inode)) entry.linkTarget = firstByInode.get(inode);
    else if (y === "f") {
      firstByInode.set(inode, path);
      Object.assign(entry, { type: "file", size: Number(size) });
    }
    const sha256 = entry.type === "file" ? createHash("sha256").update(await readFile(join(root, relative))).digest("hex") : undefined;
    seen.push(sha256 === undefined ? { entry } : { entry, sha256 });
  }
  return seen;
}

function compareParts(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return (a[i] ?? "") < (b[i] ?? "") ? -1 : 1;
  return a.length - b.length;
}

async function walk(image: ImageTree): Promise<Seen[]> {
  const seen: Seen[] = [];
  for await (const file of image.entries()) {
    const hash = createHash("sha256");
    for await (const chunk of file.read()) hash.update(chunk);
    seen.push(file.entry.type === "file" ? { entry: file.entry, sha256: hash.digest("hex") } : { entry: file.entry });
  }
  return seen;
}

function archive(name: string, args: string[]): string {
  const file = join(dir, name);
  execFileSync("tar", ["--sort=name", "-C", tree, "-cf", file, ...args, "."]);
  return file;
}

function rejection(code: string, message: RegExp, hint?: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof KilnError, String(error));
    assert.equal(error.code, code);
    assert.match(error.message, message);
    if (hint !== undefined) assert.equal(error.hint, hint);
    return true;
  };
}

/** A ustar header block for hand-made archives; `fields` overwrite bytes at their offsets. */
function header(name: string, type: string, size: number, fields: Record<number, Buffer> = {}): Buffer {
  const block = Buffer.alloc(512);
  block.write(name, 0, "utf8");
  block.write("0000644\0", 100);
  block.write("0000000\0", 108);
  block.write("0000000\0", 116);
  block.write(`${size.toString(8).padStart(11, "0")}\0`, 124);
  block.write("00000000000\0", 136);
  block.write(type, 156);
  block.write("ustar\x0000", 257, "latin1");
  for (const [offset, bytes] of Object.entries(fields)) bytes.copy(block, Number(offset));
  block.fill(0x20, 148, 156);
  const sum = block.reduce((total, byte) => total + byte, 0);
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return block;
}

function data(text: string): Buffer {
  const bytes = Buffer.alloc(Math.ceil(Buffer.byteLength(text) / 512) * 512);
  bytes.write(text);
  return bytes;
}

const end = Buffer.alloc(1024);

describe("TarTree", () => {
  let expected: Seen[];
  before(async () => {
    execFileSync("sh", ["-c", fixture, "sh", tree]);
    expected = await expectedEntries(tree);
  });

  it("the fixture holds every kind of entry", () => {
    const types = new Set(expected.map(({ entry }) => `${entry.type}${entry.linkTarget === undefined ? "" : "+link"}`));
    assert.deepEqual([...types].sort(), ["directory", "file", "other", "other+link", "symlink+link"]);
    assert.ok(expected.some(({ entry }) => entry.path.length > 150 && entry.path.endsWith(longName)));
  });

  it("reads the tree as a DirectoryTree the same way", async () => {
    assert.deepEqual(await walk(new DirectoryTree(tree)), expected);
  });

  const formats: [string, string[], string][] = [
    ["gnu.tar", ["--format=gnu"], "gnu"],
    ["gnu.tar.gz", ["--format=gnu", "-I", "gzip -1"], "gnu"],
    ["gnu.tar.zst", ["--format=gnu", "-I", "zstd -1"], "gnu"],
    ["gnu.tar.xz", ["--format=gnu", "-I", "xz -0"], "gnu"],
    ["pax.tar", ["--format=pax"], "pax"],
    ["pax-global.tar.zst", ["--format=pax", "--pax-option=comment=a global header", "-I", "zstd -1"], "pax"],
    ["ustar.tar", ["--format=ustar", ...notUstar.map((path) => `--exclude=.${path}`)], "ustar"],
    ["ustar.tar.gz", ["--format=ustar", "-z", ...notUstar.map((path) => `--exclude=.${path}`)], "ustar"],
  ];
  for (const [name, args, format] of formats) {
    it(`reads ${name}: paths, types, modes, owners, sizes, link targets and content`, async () => {
      const image = new TarTree(archive(name, args));
      const wanted = format === "ustar" ? expected.filter(({ entry }) => !notUstar.includes(entry.path)) : expected;
      assert.deepEqual(await walk(image), wanted);
    });
  }

  it("skips content that is not read, whole or in part", async () => {
    const image = new TarTree(archive("skip.tar.zst", ["--format=gnu", "-I", "zstd -1"]));
    const paths: string[] = [];
    for await (const file of image.entries()) {
      paths.push(file.entry.path);
      if (file.entry.path === "/var/big.bin") for await (const _chunk of file.read()) break;
    }
    assert.deepEqual(paths, expected.map(({ entry }) => entry.path));
  });

  it("refuses to read content once the next entry was asked for", async () => {
    const iterator = new TarTree(archive("stale.tar", ["--format=gnu"])).entries()[Symbol.asyncIterator]();
    try {
      let file = (await iterator.next()).value;
      while (file !== undefined && file.entry.type !== "file") file = (await iterator.next()).value;
      assert.ok(file !== undefined);
      await iterator.next();
      assert.throws(() => file.read(), /after the next entry/);
    } finally {
      await iterator.return?.();
    }
  });

  it("leaves no zstd behind when the walk stops early", async () => {
    const image = new TarTree(archive("early.tar.zst", ["--format=pax", "-I", "zstd -1"]));
    for await (const _file of image.entries()) break;
    const children = execFileSync("ps", ["--ppid", String(process.pid), "-o", "comm="], { encoding: "utf8" });
    assert.doesNotMatch(children, /zstd/);
  });

  it("stops with CancelledError when aborted", async () => {
    const controller = new AbortController();
    const image = new TarTree(archive("abort.tar.xz", ["--format=gnu", "-I", "xz -0"]));
    await assert.rejects(
      (async () => {
        for await (const file of image.entries(controller.signal)) if (file.entry.path === "/var") controller.abort();
      })(),
      rejection("KILN_CANCELLED", /cancelled/),
    );
  });

  it("names the archive and the entry when the archive ends in the middle of one", async () => {
    for (const name of ["cut.tar", "cut.tar.zst"]) {
      const whole = archive(name, ["--format=gnu", ...(name.endsWith(".zst") ? ["-I", "zstd -1"] : [])]);
      const part = `${whole}.part`;
      execFileSync("sh", ["-c", `head -c 3000000 "$1" > "$2"`, "sh", whole, part]);
      await assert.rejects(walk(new TarTree(part)), rejection("KILN_AUDIT_TRUNCATED", new RegExp(`^${part} ends in the middle of /var/big\\.bin$`), "the archive is incomplete: copy or download it again"));
    }
  });

  it("calls an archive cut inside a header or before the end marker truncated too", async () => {
    const whole = await readFile(archive("cut-header.tar", ["--format=gnu"]));
    const inHeader = join(dir, "cut-header.part");
    await writeFile(inHeader, whole.subarray(0, 512 + 100));
    await assert.rejects(walk(new TarTree(inHeader)), rejection("KILN_AUDIT_TRUNCATED", /ends in the header after \/$/));
    const noMarker = join(dir, "no-marker.tar");
    await writeFile(noMarker, Buffer.concat([header("etc/hostname", "0", 5), data("host\n")]));
    await assert.rejects(walk(new TarTree(noMarker)), rejection("KILN_AUDIT_TRUNCATED", /ends in the header after \/etc\/hostname, without the end-of-archive marker$/));
  });

  it("says a file that is not a tar archive is not one", async () => {
    const text = join(dir, "notes.tar");
    await writeFile(text, "just some notes\n".repeat(100));
    await assert.rejects(walk(new TarTree(text)), rejection("KILN_AUDIT_NOT_TAR", /notes\.tar is not a tar archive: it does not start with a tar header$/));
    execFileSync("sh", ["-c", `gzip -c "$1" > "$1.gz"`, "sh", text]);
    await assert.rejects(walk(new TarTree(`${text}.gz`)), rejection("KILN_AUDIT_NOT_TAR", /notes\.tar\.gz \(gzip-compressed\) is not a tar archive/));
    const empty = join(dir, "empty.tar");
    await writeFile(empty, "");
    await assert.rejects(walk(new TarTree(empty)), rejection("KILN_AUDIT_NOT_TAR", /it is empty$/));
    const zeros = join(dir, "disk.img");
    await writeFile(zeros, Buffer.alloc(64 * 1024));
    await assert.rejects(walk(new TarTree(zeros)), rejection("KILN_AUDIT_NOT_TAR", /holds no entries/));
  });

  it("reports corrupt compressed data with the archive's name", async () => {
    const bytes = await readFile(archive("corrupt.tar.gz", ["--format=gnu", "-z"]));
    bytes.fill(0xaa, 40, 140);
    const corrupt = join(dir, "corrupt.tar.gz");
    await writeFile(corrupt, bytes);
    await assert.rejects(walk(new TarTree(corrupt)), rejection("KILN_AUDIT_CORRUPT_COMPRESSED", /^.*corrupt\.tar\.gz: gzip data is corrupt \(.+\) in /));
  });

  it("reports a damaged header further in, and data hidden after the end marker", async () => {
    const damaged = join(dir, "damaged.tar");
    const second = header("etc/b", "0", 0);
    second[0] = 0x41;
    await writeFile(damaged, Buffer.concat([header("etc/a", "0", 0), second, end]));
    await assert.rejects(walk(new TarTree(damaged)), rejection("KILN_AUDIT_CORRUPT_TAR", /the header after \/etc\/a, at byte 512, has a wrong checksum$/));
    const joined = join(dir, "joined.tar");
    await writeFile(joined, Buffer.concat([header("etc/a", "0", 0), end, header("etc/hidden", "0", 0), end]));
    await assert.rejects(walk(new TarTree(joined)), rejection("KILN_AUDIT_CORRUPT_TAR", /has data after its end-of-archive marker, at byte 1536$/));
  });

  it("keeps every path inside the image, and reads base-256 numbers, prefixes and pax overrides", async () => {
    const file = join(dir, "crafted.tar");
    const base256 = (value: number, length: number): Buffer => {
      const field = Buffer.alloc(length);
      field.writeUIntBE(value, length - 6, 6);
      field[0] = 0x80;
      return field;
    };
    const pax = (records: Record<string, string>): string =>
      Object.entries(records).map(([key, value]) => {
        const body = ` ${key}=${value}\n`;
        let length = Buffer.byteLength(body) + 1;
        while (Buffer.byteLength(`${length}${body}`) !== length) length++;
        return `${length}${body}`;
      }).join("");
    const paxText = pax({ path: "./über/../real name", uid: "4000000000", size: "6" });
    await writeFile(file, Buffer.concat([
      header("../../etc/escape", "0", 0),
      header("/abs/./path/", "5", 0),
      header("big-size", "0", 0, { 124: base256(3, 12), 108: base256(70000, 8) }),
      data("abc"),
      header("name", "0", 0, { 345: Buffer.from("some/prefix") }),
      header("hard", "1", 0, { 157: Buffer.from("./etc/../target") }),
      header("dev/null", "3", 0),
      header("PaxHeaders/x", "x", Buffer.byteLength(paxText)),
      data(paxText),
      header("short", "0", 0),
      data("secret"),
      end,
    ]));
    const seen = (await walk(new TarTree(file))).map(({ entry, sha256 }) => [entry.path, entry.type, entry.size, entry.uid, entry.linkTarget, sha256?.slice(0, 8)]);
    const sha = (text: string): string => createHash("sha256").update(text).digest("hex").slice(0, 8);
    assert.deepEqual(seen, [
      ["/etc/escape", "file", 0, 0, undefined, sha("")],
      ["/abs/path", "directory", 0, 0, undefined, undefined],
      ["/big-size", "file", 3, 70000, undefined, sha("abc")],
      ["/some/prefix/name", "file", 0, 0, undefined, sha("")],
      ["/hard", "other", 0, 0, "/target", undefined],
      ["/dev/null", "other", 0, 0, undefined, undefined],
      ["/real name", "file", 6, 4000000000, undefined, sha("secret")],
    ]);
  });
});
