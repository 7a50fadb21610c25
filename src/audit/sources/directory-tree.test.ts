import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmod, link, mkdir, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { KilnError } from "../../errors.js";
import type { TreeEntry } from "./image-tree.js";
import { DirectoryTree } from "./directory-tree.js";

// At the top level: the helper's cleanup would run right after a before() hook.
const dir = await tempDirectory();
const root = join(dir, "root");
const outside = join(dir, "outside");
const big = randomBytes(3 * 1024 * 1024 + 5);

async function entriesOf(tree: DirectoryTree): Promise<Map<string, { entry: TreeEntry; chunks: number[] }>> {
  const seen = new Map<string, { entry: TreeEntry; chunks: number[] }>();
  for await (const file of tree.entries()) {
    const chunks: number[] = [];
    for await (const chunk of file.read()) chunks.push(chunk.length);
    seen.set(file.entry.path, { entry: file.entry, chunks });
  }
  return seen;
}

/**
 * Walks `tree` in a child process that obeys file permissions even when the tests run as root:
 * without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH root reads only what the mode bits allow.
 */
function walkWithoutPrivilege(tree: string): { code?: string; message?: string; hint?: string } {
  const module = new URL("./directory-tree.js", import.meta.url).href;
  const script = `
    const { DirectoryTree } = await import(${JSON.stringify(module)});
    try {
      for await (const file of new DirectoryTree(${JSON.stringify(tree)}).entries()) for await (const _ of file.read());
      console.log("{}");
    } catch (error) {
      console.log(JSON.stringify({ code: error.code, message: error.message, hint: error.hint }));
    }`;
  const node = [process.execPath, "--input-type=module", "-e", script];
  const argv = process.getuid?.() === 0 ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search", ...node] : node;
  return JSON.parse(execFileSync(argv[0] ?? "", argv.slice(1), { encoding: "utf8" })) as { code?: string; message?: string; hint?: string };
}

describe("DirectoryTree", () => {
  // Listening for the whole suite: closing the server removes its socket file.
  const server = createServer();
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  before(async () => {
    await mkdir(join(root, "etc/ssh"), { recursive: true });
    await mkdir(join(outside, "private"), { recursive: true });
    await writeFile(join(outside, "private/key"), "not part of the image\n");
    await writeFile(join(root, "etc/ssh/ssh_host_ed25519_key"), "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    await link(join(root, "etc/ssh/ssh_host_ed25519_key"), join(root, "etc/ssh/zz_second_link"));
    await writeFile(join(root, "big.bin"), big);
    await symlink(outside, join(root, "escape"));
    await symlink("/", join(root, "slash"));
    await symlink("../outside/private/key", join(root, "etc/relative"));
    execFileSync("mkfifo", [join(root, "fifo")]);
    await new Promise<void>((resolve) => server.listen(join(root, "socket"), resolve));
    await symlink(root, join(dir, "root-link"));
  });

  it("walks depth first in name order, from the root itself", async () => {
    const paths = [...(await entriesOf(new DirectoryTree(root))).keys()];
    assert.deepEqual(paths, ["/", "/big.bin", "/escape", "/etc", "/etc/relative", "/etc/ssh", "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/zz_second_link", "/fifo", "/slash", "/socket"]);
  });

  it("reports symlinks with their targets and never follows them out of the tree", async () => {
    const seen = await entriesOf(new DirectoryTree(root));
    assert.deepEqual(seen.get("/escape")?.entry, { path: "/escape", type: "symlink", mode: 0o777, uid: 0, gid: 0, size: 0, linkTarget: outside });
    assert.equal(seen.get("/slash")?.entry.linkTarget, "/");
    assert.equal(seen.get("/etc/relative")?.entry.linkTarget, "../outside/private/key");
    assert.deepEqual(seen.get("/etc/relative")?.chunks, []);
    assert.ok(![...seen.keys()].some((path) => path.includes("private")));
  });

  it("reports fifos and sockets as other and never opens them", async () => {
    const seen = await entriesOf(new DirectoryTree(root));
    assert.equal(seen.get("/fifo")?.entry.type, "other");
    assert.deepEqual(seen.get("/fifo")?.chunks, []);
    assert.equal(seen.get("/socket")?.entry.type, "other");
    assert.deepEqual(seen.get("/socket")?.chunks, []);
  });

  it("reads a file's second hard link as a link to the first, so its content is read once", async () => {
    const seen = await entriesOf(new DirectoryTree(root));
    assert.equal(seen.get("/etc/ssh/ssh_host_ed25519_key")?.entry.type, "file");
    assert.deepEqual(seen.get("/etc/ssh/zz_second_link")?.entry, {
      path: "/etc/ssh/zz_second_link", type: "other", mode: 0o644, uid: 0, gid: 0, size: 0, linkTarget: "/etc/ssh/ssh_host_ed25519_key",
    });
  });

  it("reads content in chunks of at most 1 MiB, all of it", async () => {
    const tree = new DirectoryTree(root);
    for await (const file of tree.entries()) {
      if (file.entry.path !== "/big.bin") continue;
      const hash = createHash("sha256");
      let largest = 0;
      for await (const chunk of file.read()) {
        hash.update(chunk);
        largest = Math.max(largest, chunk.length);
      }
      assert.equal(file.entry.size, big.length);
      assert.equal(hash.digest("hex"), createHash("sha256").update(big).digest("hex"));
      assert.equal(largest, 1024 * 1024);
    }
  });

  it("follows the root when it is given as a symlink", async () => {
    const seen = await entriesOf(new DirectoryTree(join(dir, "root-link")));
    assert.equal(seen.get("/")?.entry.type, "directory");
    assert.ok(seen.has("/etc/ssh/ssh_host_ed25519_key"));
  });

  it("says so when the root is not a directory", async () => {
    await assert.rejects(entriesOf(new DirectoryTree(join(root, "big.bin"))), { code: "KILN_AUDIT_NOT_DIRECTORY" });
  });

  it("stops with CancelledError when aborted", async () => {
    const controller = new AbortController();
    await assert.rejects(
      (async () => {
        for await (const _file of new DirectoryTree(root).entries(controller.signal)) controller.abort();
      })(),
      (error: unknown) => error instanceof KilnError && error.code === "KILN_CANCELLED",
    );
  });

  it("names a file it may not read, and says to run as root", async () => {
    const tree = join(dir, "locked-file");
    await mkdir(join(tree, "etc"), { recursive: true });
    await writeFile(join(tree, "etc/shadow"), "root:$6$x:1::::::\n");
    await chmod(join(tree, "etc/shadow"), 0o000);
    assert.deepEqual(walkWithoutPrivilege(tree), {
      code: "KILN_AUDIT_PERMISSION",
      message: `cannot read /etc/shadow in ${tree}: permission denied`,
      hint: "run kiln audit as root (images hold root-only files)",
    });
  });

  it("names a directory it may not list", async () => {
    const tree = join(dir, "locked-directory");
    await mkdir(join(tree, "root/.ssh"), { recursive: true });
    await chmod(join(tree, "root"), 0o000);
    assert.equal(walkWithoutPrivilege(tree).message, `cannot read /root in ${tree}: permission denied`);
  });
});
