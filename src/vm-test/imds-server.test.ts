import assert from "node:assert/strict";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { ImdsServer } from "./imds-server.js";

function call(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { body += c; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the local metadata service (IMDSv2's rules)", () => {
  let imds: ImdsServer;
  const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiln kiln-test";
  before(async () => { imds = await ImdsServer.start({ instanceId: "i-0123456789abcdef0", publicKey: key, hostname: "kiln-test-1" }); });
  after(() => imds.close());
  const token = async (ttl = "300"): Promise<string> => (await call(imds.port, "PUT", "/latest/api/token", { "X-aws-ec2-metadata-token-ttl-seconds": ttl })).body;

  it("issues a token only to a PUT with a TTL of 1 to 21600 seconds that did not come through a proxy", async () => {
    assert.equal((await call(imds.port, "PUT", "/latest/api/token")).status, 400, "no TTL");
    for (const ttl of ["0", "21601", "1.5", "abc"]) assert.equal((await call(imds.port, "PUT", "/latest/api/token", { "X-aws-ec2-metadata-token-ttl-seconds": ttl })).status, 400, ttl);
    assert.equal((await call(imds.port, "PUT", "/latest/api/token", { "X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "10.0.0.1" })).status, 403);
    assert.equal((await call(imds.port, "GET", "/latest/api/token", { "X-aws-ec2-metadata-token-ttl-seconds": "60" })).status, 405);
    assert.ok((await token("21600")).length >= 32);
  });

  it("answers a token PUT to any other path 403 and a token GET 405 with the methods allowed, as EC2's IMDS does", async () => {
    const ttl = { "X-aws-ec2-metadata-token-ttl-seconds": "60" };
    // AWS: "Issuing PUT requests to any version-specific path, for example /2021-03-23/api/token, will
    // result in the metadata service returning 403 Forbidden errors"; a trailing slash is answered the same.
    for (const path of ["/2021-03-23/api/token", "/latest/api/token/", "/latest/meta-data/"]) {
      assert.equal((await call(imds.port, "PUT", path, ttl)).status, 403, path);
    }
    const get = await new Promise<{ status: number; allow: string | undefined }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: imds.port, method: "GET", path: "/latest/api/token", headers: ttl }, (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow }));
      });
      req.on("error", reject);
      req.end();
    });
    assert.deepEqual(get, { status: 405, allow: "OPTIONS, PUT" });
  });

  it("answers nothing without a valid token (IMDSv1 refused), and the instance's id and key with one", async () => {
    assert.equal((await call(imds.port, "GET", "/latest/meta-data/instance-id")).status, 401);
    assert.equal((await call(imds.port, "GET", "/latest/meta-data/instance-id", { "X-aws-ec2-metadata-token": "forged" })).status, 401);
    const t = await token();
    assert.deepEqual(await call(imds.port, "GET", "/latest/meta-data/instance-id", { "X-aws-ec2-metadata-token": t }), { status: 200, body: "i-0123456789abcdef0" });
    assert.deepEqual(await call(imds.port, "GET", "/latest/meta-data/public-keys/0/openssh-key", { "X-aws-ec2-metadata-token": t }), { status: 200, body: `${key}\n` });
    assert.equal((await call(imds.port, "GET", "/latest/meta-data/iam/security-credentials/", { "X-aws-ec2-metadata-token": t })).status, 404, "no credentials to steal");
    assert.equal((await call(imds.port, "GET", "/latest/user-data", { "X-aws-ec2-metadata-token": t })).status, 404, "no user data given");
    assert.ok(imds.keyServedOverV2());
  });

  it("lets a token expire after its TTL, and forgets every token when the next instance boots", async () => {
    const short = await token("1");
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await call(imds.port, "GET", "/latest/meta-data/instance-id", { "X-aws-ec2-metadata-token": short })).status, 401);
    const t = await token();
    imds.become({ instanceId: "i-0fedcba9876543210", publicKey: "ssh-ed25519 AAAAother", hostname: "kiln-test-2" });
    assert.equal((await call(imds.port, "GET", "/latest/meta-data/instance-id", { "X-aws-ec2-metadata-token": t })).status, 401, "the earlier instance's token");
    assert.equal(imds.keyServedOverV2(), false, "the new instance has not fetched its key yet");
    assert.equal((await call(imds.port, "GET", "/latest/meta-data/instance-id", { "X-aws-ec2-metadata-token": await token() })).body, "i-0fedcba9876543210");
  });
});

describe("the local metadata service under a guest that floods it", () => {
  // QEMU starts one bridge process per guest connection: connections the service holds open hold those processes.
  it("holds only a few connections open at once; the rest are closed at once", async () => {
    const imds = await ImdsServer.start({ instanceId: "i-0123456789abcdef0", publicKey: "ssh-ed25519 AAAAkey", hostname: "kiln-test-1" });
    const sockets: Socket[] = [];
    try {
      const closed = await Promise.all(Array.from({ length: 64 }, () => new Promise<boolean>((resolve) => {
        const socket = connect(imds.port, "127.0.0.1");
        sockets.push(socket);
        socket.on("error", () => undefined);
        socket.on("close", () => resolve(true));
        setTimeout(() => resolve(false), 1500).unref();
      })));
      const open = closed.filter((c) => !c).length;
      assert.ok(open <= 16, `${open} idle connections held open`);
      assert.ok(open > 0, "a guest's requests are still answered");
    } finally {
      for (const s of sockets) s.destroy();
      await imds.close();
    }
  });

  it("keeps a bounded record of requests and tokens however many the guest makes", async () => {
    const imds = await ImdsServer.start({ instanceId: "i-0123456789abcdef0", publicKey: "ssh-ed25519 AAAAkey", hostname: "kiln-test-1" });
    try {
      const first = (await call(imds.port, "PUT", "/latest/api/token", { "X-aws-ec2-metadata-token-ttl-seconds": "21600" })).body;
      assert.equal((await call(imds.port, "GET", "/latest/meta-data/public-keys/0/openssh-key", { "X-aws-ec2-metadata-token": first })).status, 200);
      for (let i = 0; i < 1500; i += 1) await call(imds.port, "PUT", "/latest/api/token", { "X-aws-ec2-metadata-token-ttl-seconds": "21600" });
      assert.ok(imds.requests.length <= 1024, `${imds.requests.length} requests recorded`);
      assert.ok(imds.tokenCount <= 1024, `${imds.tokenCount} tokens kept`);
      assert.ok(imds.keyServedOverV2(), "the key fetch is remembered");
      const latest = (await call(imds.port, "PUT", "/latest/api/token", { "X-aws-ec2-metadata-token-ttl-seconds": "60" })).body;
      assert.equal((await call(imds.port, "GET", "/latest/meta-data/instance-id", { "X-aws-ec2-metadata-token": latest })).status, 200);
    } finally {
      await imds.close();
    }
  });
});
