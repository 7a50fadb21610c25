import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../../test/helpers/temp.js";
import { baseSources, defaultDebianMirror, machineMirror } from "./apt-mirror.js";

describe("machineMirror", () => {
  it("reads deb822 sources and skips other suites and repositories", async () => {
    const apt = await tempDirectory();
    await mkdir(join(apt, "sources.list.d"));
    await writeFile(join(apt, "sources.list.d", "a-vendor.sources"), "Types: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\nComponents: main\n");
    await writeFile(join(apt, "sources.list.d", "debian.sources"),
      "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n# comment\nTypes: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n");
    assert.equal(await machineMirror("bookworm", apt), "http://mirror.example/debian");
  });

  it("reads one-line sources.list entries with options", async () => {
    const apt = await tempDirectory();
    await writeFile(join(apt, "sources.list"), "# deb http://old.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://one.example/debian trixie main\n");
    assert.equal(await machineMirror("trixie", apt), "http://one.example/debian");
  });

  it("adds the -updates and -security suites this machine lists, and no others", async () => {
    const apt = await tempDirectory();
    await mkdir(join(apt, "sources.list.d"));
    await writeFile(join(apt, "sources.list.d", "debian.sources"),
      "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\nTypes: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n");
    assert.deepEqual(await baseSources("bookworm", ["main", "contrib"], undefined, apt), [
      "deb http://mirror.example/debian bookworm main contrib",
      "deb http://mirror.example/debian bookworm-updates main contrib",
      "deb http://security.example/debian-security bookworm-security main contrib",
    ]);
    assert.deepEqual(await baseSources("trixie", ["main"], "http://given.example/debian", apt), ["deb http://given.example/debian trixie main"]);
  });

  it("falls back to Debian's redirector", async () => {
    assert.equal(await machineMirror("bookworm", await tempDirectory()), defaultDebianMirror);
  });
});
