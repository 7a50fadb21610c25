import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { absolutePath, asTreeRoot } from "./tree-owner.js";

describe("asTreeRoot", () => {
  it("drops relative PATH entries, which would resolve in the tree it runs in", () => {
    assert.equal(absolutePath(".:/usr/bin::bin:/bin:"), "/usr/bin:/bin");
    assert.equal(absolutePath(""), "/usr/sbin:/usr/bin:/sbin:/bin");
    assert.equal(absolutePath(undefined), "/usr/sbin:/usr/bin:/sbin:/bin");
  });

  it("starts from an absolute program, rootless or not", () => {
    assert.equal(asTreeRoot(undefined, ["mke2fs"])[0], "/usr/bin/env");
    const argv = asTreeRoot({ base: 0x7ffe0000, count: 0x10000, idmap: "/w/idmap" }, ["tar"]);
    assert.equal(argv[0], "/usr/bin/env");
    assert.match(argv[1] ?? "", /^PATH=\/w\/idmap:\//);
    assert.doesNotMatch(argv[1] ?? "", /(^PATH=|:)(\.|)(:|$)/);
  });
});
