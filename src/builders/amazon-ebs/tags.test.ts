import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clientToken } from "./tags.js";

const longName = "a-template-with-a-rather-long-name-for-the-images-of-team-x";
const ascii64 = /^[\x21-\x7e]{1,64}$/;

describe("client tokens", () => {
  it("stay readable when they fit: the call, then the build id", () => {
    assert.equal(clientToken("lost-launch-20260101-120000-abcdef", "launch"), "launch-lost-launch-20260101-120000-abcdef");
  });

  it("differ between two builds of a long name that differ only in their random end", () => {
    const one = clientToken(`${longName}-20260101-120000-abcdef`, "copy-ap-southeast-2");
    const other = clientToken(`${longName}-20260101-120000-abcdf0`, "copy-ap-southeast-2");
    assert.notEqual(one, other);
    for (const token of [one, other]) assert.match(token, ascii64);
    assert.match(one, /^copy-ap-southeast-2-[0-9a-f]{16}-20260101-120000-abcdef$/, "the call and the build id's end stay readable");
  });

  it("differ between two calls of one build, and between builds that start alike", () => {
    const buildId = `${longName}-20260101-120000-abcdef`;
    const tokens = [
      clientToken(buildId, "launch"), clientToken(buildId, "launch-spot"), clientToken(buildId, "copy-us-west-2"), clientToken(buildId, "copy-ap-southeast-2"),
      clientToken(`${longName}-and-more-20260101-120000-abcdef`, "launch"), clientToken("short-20260101-120000-abcdef", "launch"),
    ];
    assert.equal(new Set(tokens).size, tokens.length, tokens.join("\n"));
    for (const token of tokens) assert.match(token, ascii64);
  });

  it("are at most 64 printable ASCII characters whatever the call and the build id", () => {
    for (const [buildId, call] of [["x".repeat(300), "launch"], [`${longName}-20260101-120000-abcdef`, "c".repeat(100)], ["bäume-20260101-120000-abcdef", "launch"], ["b-20260101-120000-abcdef", "copy région"]]) {
      assert.match(clientToken(buildId ?? "", call ?? ""), ascii64, `${call} ${buildId}`);
    }
  });
});
