import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../test/helpers/temp.js";
import { KilnError } from "../errors.js";
import { ChrootCommunicator } from "./chroot-communicator.js";

describe("ChrootCommunicator uploads", () => {
  it("refuses a fifo as the source at once, instead of waiting for a writer forever", async () => {
    const dir = await tempDirectory("kiln-upload-");
    execFileSync("mkfifo", [join(dir, "pipe")]);
    const started = Date.now();
    await assert.rejects(new ChrootCommunicator(join(dir, "no-tree")).upload(join(dir, "pipe"), "/etc/x", { what: "provisioner 1 (file)", signal: new AbortController().signal }), (error: unknown) => {
      assert.ok(error instanceof KilnError, String(error));
      assert.equal(error.code, "KILN_UPLOAD_REFUSED");
      assert.match(error.message, /^provisioner 1 \(file\): .*\/pipe is not a regular file or a directory$/);
      return true;
    });
    assert.ok(Date.now() - started < 2000);
  });
});
