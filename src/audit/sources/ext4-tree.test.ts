import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { Ext4Filesystem } from "../../image/ext4/ext4-filesystem.js";
import { Ext4Tree } from "./ext4-tree.js";

describe("Ext4Tree", () => {
  it("gives the live files of an ext4 image and their content, then knows who owns each block", async () => {
    const dir = await tempDirectory();
    const tree = join(dir, "tree");
    await mkdir(join(tree, "etc"), { recursive: true });
    await writeFile(join(tree, "etc/motd"), "welcome\n".repeat(2000));
    const image = join(dir, "root.img");
    execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", "-d", tree, image, "16M"], { stdio: "ignore" });
    const handle = await open(image, "r");
    try {
      const fs = await Ext4Filesystem.open(handle, { offset: 0, size: 16 << 20, name: image });
      const source = new Ext4Tree(fs, image);
      assert.equal(source.description, `ext4 filesystem in ${image}`);
      const contents = new Map<string, string>();
      for await (const file of source.entries()) {
        const chunks: Buffer[] = [];
        for await (const chunk of file.read()) chunks.push(chunk);
        contents.set(file.entry.path, Buffer.concat(chunks).toString());
      }
      assert.deepEqual([...contents.keys()], ["/", "/etc", "/etc/motd", "/lost+found"]);
      assert.equal(contents.get("/etc/motd"), "welcome\n".repeat(2000));
      assert.equal(fs.ownerOf(0).kind, "metadata");
    } finally {
      await handle.close();
    }
  });
});
