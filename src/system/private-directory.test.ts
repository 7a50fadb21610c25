import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { KilnError } from "../errors.js";
import { ensureSafeDirectory, makePrivateDirectory } from "./private-directory.js";

const nobody = 65534;
const isRoot = process.geteuid?.() === 0;

function refused(fragment: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof KilnError, String(error));
    assert.equal(error.code, "KILN_UNSAFE_DIRECTORY");
    assert.match(error.message, new RegExp(fragment));
    assert.ok(error.hint !== undefined && error.hint.length > 0);
    return true;
  };
}

describe("private build directories", () => {
  let scratch: string;
  before(async () => { scratch = await mkdtemp(join(tmpdir(), "kiln-private-test-")); });
  after(async () => { await rm(scratch, { recursive: true, force: true }); });

  it("refuses a work parent owned by another user", { skip: !isRoot && "needs root to chown" }, async () => {
    const parent = join(scratch, "others");
    await mkdir(parent, { mode: 0o755 });
    await chown(parent, nobody, nobody);
    await assert.rejects(makePrivateDirectory(parent, "build"), refused(`${parent} \\(owner uid ${nobody}, mode 0755\\).*another user`));
    assert.deepEqual(await readdir(parent), []);
  });

  it("refuses a work parent below a directory owned by another user", { skip: !isRoot && "needs root to chown" }, async () => {
    const theirs = join(scratch, "theirs");
    await mkdir(join(theirs, "kiln"), { recursive: true, mode: 0o700 });
    await chown(theirs, nobody, nobody);
    await assert.rejects(makePrivateDirectory(join(theirs, "kiln"), "build"), refused(`${theirs} \\(owner uid ${nobody}`));
  });

  it("refuses a work parent that is a symbolic link, even to a safe directory", async () => {
    const real = join(scratch, "real");
    await mkdir(real, { mode: 0o700 });
    const link = join(scratch, "link");
    await symlink(real, link);
    await assert.rejects(makePrivateDirectory(link, "build"), refused(`${link} .*symbolic link`));
    assert.deepEqual(await readdir(real), []);
  });

  it("refuses a group- or world-writable work parent that is not sticky", async () => {
    for (const mode of [0o777, 0o770]) {
      const parent = join(scratch, `writable-${mode.toString(8)}`);
      await mkdir(parent);
      await chmod(parent, mode);
      await assert.rejects(makePrivateDirectory(parent, "build"), refused(`mode 0${mode.toString(8)}\\).*not sticky`));
    }
  });

  it("accepts a sticky world-writable parent (like /tmp) and creates a missing work parent 0700", async () => {
    const shared = join(scratch, "shared");
    await mkdir(shared);
    await chmod(shared, 0o1777);
    const made = await ensureSafeDirectory(join(shared, "kiln"));
    const stats = await lstat(made);
    assert.ok(stats.isDirectory());
    assert.equal(stats.mode & 0o7777, 0o700);
  });

  it("makes each build directory 0700, ours, with an unpredictable name", async () => {
    const parent = join(scratch, "work");
    const first = await makePrivateDirectory(parent, "local-20260101-000000-abcdef");
    const second = await makePrivateDirectory(parent, "local-20260101-000000-abcdef");
    for (const made of [first, second]) {
      const stats = await lstat(made);
      assert.ok(stats.isDirectory() && !stats.isSymbolicLink());
      assert.equal(stats.uid, process.geteuid?.());
      assert.equal(stats.mode & 0o7777, 0o700);
      assert.match(basename(made), /^local-20260101-000000-abcdef-[A-Za-z0-9]{6}$/);
    }
    assert.notEqual(first, second);
  });

  it("ignores a symbolic link planted at the old predictable path <workParent>/<buildId>", async () => {
    const parent = join(scratch, "planted");
    await mkdir(parent, { mode: 0o1777 });
    await chmod(parent, 0o1777);
    const victim = join(scratch, "victim");
    await mkdir(victim);
    const buildId = "local-20260101-000000-123456";
    await symlink(victim, join(parent, buildId));
    await symlink(victim, join(parent, `${buildId}-mmdebstrap`));
    const work = await makePrivateDirectory(parent, buildId);
    const mmdebstrap = await makePrivateDirectory(parent, `${buildId}-mmdebstrap`);
    for (const made of [work, mmdebstrap]) {
      assert.ok(!made.startsWith(victim));
      assert.ok((await lstat(made)).isDirectory());
      assert.notEqual(made, join(parent, buildId));
      assert.notEqual(made, join(parent, `${buildId}-mmdebstrap`));
    }
    assert.deepEqual(await readdir(victim), []);
  });
});
