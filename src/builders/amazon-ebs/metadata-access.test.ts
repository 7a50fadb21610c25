import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { metadataWarning, tokenlessMetadataReads } from "./metadata-access.js";

describe("user data that reads the metadata service without a token", () => {
  it("is found line by line, in every spelling of the service's address", () => {
    const script = ["#!/bin/sh", "curl http://169.254.169.254/latest/meta-data/instance-id", "echo ok", "curl 'http://[fd00:ec2::254]/latest/meta-data/'", "wget http://instance-data:80/latest/", "curl http://[fd00:ec2:0:0:0:0:0:254]/"].join("\r\n");
    assert.deepEqual(tokenlessMetadataReads(script).map((r) => r.line), [2, 4, 5, 6]);
  });

  it("is not found where the user data asks for a token, unless the token is only in a comment", () => {
    const v2 = 'TOKEN=$(curl -X PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 60")\ncurl -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/';
    assert.deepEqual(tokenlessMetadataReads(v2), []);
    assert.deepEqual(tokenlessMetadataReads("# TODO: X-aws-ec2-metadata-token\ncurl http://169.254.169.254/latest/meta-data/").map((r) => r.line), [2]);
  });

  it("names the lines without quoting them (a secret may be on the same line)", () => {
    const reads = tokenlessMetadataReads('curl -H "Authorization: Bearer sk-live-1234567890" http://169.254.169.254/latest/user-data');
    const warning = metadataWarning({ metadata_options: { http_tokens: "required" } }, "boot.sh", reads) ?? "";
    assert.match(warning, /at boot\.sh:1, and http_tokens is required: that read gets 401 on AWS/);
    assert.ok(!warning.includes("sk-live"));
  });
});
