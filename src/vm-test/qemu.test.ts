import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, mkdir, symlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { tempDirectory } from "../../test/helpers/temp.js";
import { ImdsServer } from "./imds-server.js";
import { imdsBridgeCommand } from "./qemu.js";

describe("the metadata bridge QEMU runs per guest connection (guestfwd cmd:)", () => {
  let imds: ImdsServer | undefined;
  after(() => imds?.close());

  it("reaches the metadata service when kiln is installed under a path with a space, split as libslirp splits it", async () => {
    const base = await tempDirectory("kiln-bridge-");
    const install = join(base, "my tools");
    await mkdir(install);
    // kiln under a directory with a space: its node and its bridge script.
    await symlink(process.execPath, join(install, "node"));
    await copyFile(join(dirname(fileURLToPath(import.meta.url)), "imds-bridge.js"), join(install, "imds-bridge.js"));
    const scratch = join(base, "scratch");
    await mkdir(scratch);
    imds = await ImdsServer.start({ instanceId: "i-0", publicKey: "ssh-ed25519 AAAA", hostname: "h" });
    await imdsBridgeCommand(scratch, imds.port, join(install, "node"), join(install, "imds-bridge.js"));
    // Made again for the second boot, from the same scratch directory.
    const command = await imdsBridgeCommand(scratch, imds.port, join(install, "node"), join(install, "imds-bridge.js"));
    // libslirp 4.7 (Debian 12) runs the command split on single spaces, no shell (g_strsplit in fork_exec).
    const [file, ...args] = command.split(" ");
    const child = spawn(file ?? "", args, { stdio: ["pipe", "pipe", "inherit"] });
    let answer = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (c: string) => { answer += c; });
    child.stdin.end("GET /latest/meta-data/instance-id HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n");
    const code = await new Promise((resolve) => { child.on("exit", resolve); child.on("error", () => resolve("spawn error")); });
    assert.match(answer, /^HTTP\/1\.1 401 /, `answer ${JSON.stringify(answer)}, exit ${String(code)}`);
    await assert.rejects(imdsBridgeCommand(join(base, "a b"), 1, "node", "script"), /has a space or quote/);
  });
});
