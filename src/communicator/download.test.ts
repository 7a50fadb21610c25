import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { chmod, link, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Writable } from "node:stream";
import { tempDirectory } from "../../test/helpers/temp.js";
import { receiveTree } from "./download.js";

const isRoot = process.geteuid?.() === 0;

/** Sends a real tar of `dir`/`name`, as GNU tar in the image would. */
function tarOf(dir: string, name: string): (into: Writable) => Promise<void> {
  return (into) => new Promise((resolve, reject) => {
    const tar = spawn("tar", ["-C", dir, "-cf", "-", name], { stdio: ["ignore", "pipe", "inherit"] });
    tar.stdout.pipe(into, { end: false });
    tar.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`tar exited ${code}`))));
  });
}

describe("receiveTree unpacks a download from the image as data", () => {
  it("strips setuid and setgid, and skips fifos, devices, sockets and links that lead out of the copy, saying so", async () => {
    const image = await tempDirectory("kiln-image-");
    const top = join(image, "dl");
    await mkdir(join(top, "sub"), { recursive: true });
    await writeFile(join(top, "suid"), "#!/bin/sh\n");
    await chmod(join(top, "suid"), 0o6755);
    await writeFile(join(top, "sub/plain"), "plain\n");
    await link(join(top, "sub/plain"), join(top, "hard"));
    execFileSync("mkfifo", [join(top, "fifo")]);
    if (isRoot) execFileSync("mknod", [join(top, "null"), "c", "1", "3"]);
    execFileSync("python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", join(top, "sock")]);
    await symlink("/etc/shadow", join(top, "shadow"));
    await symlink("../../../../../../../../etc/shadow", join(top, "sub/climb"));
    await symlink(".", join(top, "self"));
    await symlink("self/sub/../..", join(top, "tricky"));
    await symlink("sub/plain", join(top, "inside"));

    const local = await tempDirectory("kiln-local-");
    const skipped: string[] = [];
    const destination = await receiveTree("dl", `${local}/`, "test", tarOf(image, "dl"), (path, why) => skipped.push(`${path}: ${why}`));
    assert.equal(destination, join(local, "dl"));
    const names = (await readdir(destination)).sort();
    assert.deepEqual(names, ["hard", "inside", "self", "sub", "suid"]);
    assert.equal((await lstat(join(destination, "suid"))).mode & 0o7777, 0o755, "setuid and setgid stripped");
    assert.equal(await readFile(join(destination, "hard"), "utf8"), "plain\n");
    assert.equal(await readlink(join(destination, "inside")), "sub/plain", "a link inside the copy is kept");
    assert.deepEqual((await readdir(join(destination, "sub"))).sort(), ["plain"]);
    const said = skipped.join("\n");
    // GNU tar leaves sockets out of the archive itself ("socket ignored"); the listing above shows it is not here.
    for (const name of ["fifo", "shadow", "sub/climb", "tricky", ...(isRoot ? ["null"] : [])]) {
      assert.match(said, new RegExp(`^dl/${name}: `, "m"), `${name} is reported: ${said}`);
    }
    assert.match(said, /^dl\/shadow: a link to \/etc\/shadow, outside the copy/m);
  });

  it("refuses a copy that is nothing but a fifo, naming it", async () => {
    const image = await tempDirectory("kiln-image-");
    execFileSync("mkfifo", [join(image, "status")]);
    const local = await tempDirectory("kiln-local-");
    await assert.rejects(receiveTree("status", join(local, "status"), "provisioner 2 (file)", tarOf(image, "status"), () => undefined),
      /provisioner 2 \(file\): the image's status is not a file or directory \(a fifo, device or socket\)/);
    assert.deepEqual(await readdir(local), [], "nothing left at the destination");
  });
});
