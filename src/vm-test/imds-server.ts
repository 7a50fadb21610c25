import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** What one boot of the guest is told: the instance it is and the key it was "launched" with. */
export interface InstanceIdentity {
  instanceId: string;
  /** The launch key's OpenSSH public key line. */
  publicKey: string;
  userData?: string;
  hostname: string;
}

/** One request the guest made, as the test reports it. */
export interface ImdsRequest {
  method: string;
  path: string;
  status: number;
  /** Whether a session token came with it (IMDSv2). */
  token: boolean;
}

const maxTtlSeconds = 21600;
/**
 * A guest can open connections and ask without end: QEMU starts a bridge process for each
 * connection, which lives as long as this service holds it. So few connections at once, idle
 * ones closed soon, and a bounded record of requests and tokens.
 */
const maxConnections = 16;
const maxRecorded = 1024;

/**
 * An instance metadata service with IMDSv2's rules as AWS documents them, for the guest
 * `kiln test` boots (reached at 169.254.169.254 through QEMU's user network):
 * - `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` 1–21600 issues a token
 *   (400 without or outside that range); a PUT carrying `X-Forwarded-For` is refused (403), as
 *   the real service refuses tokens to requests that went through a proxy;
 * - every GET needs a valid, unexpired token: 401 otherwise (an instance that requires IMDSv2),
 *   so a guest that only speaks IMDSv1 gets neither its id nor its key;
 * - a PUT to any other path (`/2021-03-23/api/token`, `/latest/api/token/`) is 403, as AWS
 *   documents; a GET of the token path 405 with `Allow: OPTIONS, PUT`, as EC2 answers it;
 * - unknown paths are 404, other methods 405; the token is bound to this service's lifetime.
 * The IP hop limit of token responses cannot be reproduced through QEMU's user network (it
 * rewrites every packet): the README says so.
 */
export class ImdsServer {
  readonly requests: ImdsRequest[] = [];

  private identity: InstanceIdentity;
  private readonly tokens = new Map<string, number>();
  private keyServed = false;

  private constructor(private readonly server: Server, identity: InstanceIdentity) {
    this.identity = identity;
  }

  static async start(identity: InstanceIdentity): Promise<ImdsServer> {
    const holder: { self?: ImdsServer } = {};
    const server = createServer({ headersTimeout: 10_000, requestTimeout: 10_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: 2_000 }, (req, res) => holder.self?.answer(req, res));
    server.maxConnections = maxConnections;
    const self = new ImdsServer(server, identity);
    holder.self = self;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return self;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The next boot is another instance: a new id, a new key; earlier tokens stop working. */
  become(identity: InstanceIdentity): void {
    this.identity = identity;
    this.tokens.clear();
    this.requests.length = 0;
    this.keyServed = false;
  }

  /** Whether the guest got its key, and only ever with a token. */
  keyServedOverV2(): boolean {
    return this.keyServed;
  }

  /** How many tokens it remembers. */
  get tokenCount(): number {
    return this.tokens.size;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const tokenHeader = req.headers["x-aws-ec2-metadata-token"];
    const reply = (status: number, body = ""): void => {
      if (this.requests.length < maxRecorded) this.requests.push({ method: req.method ?? "", path, status, token: typeof tokenHeader === "string" });
      if (path === "/latest/meta-data/public-keys/0/openssh-key" && status === 200) this.keyServed = true;
      res.writeHead(status, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
    // The request body (there is none in IMDS) is drained so the connection can be reused.
    req.resume();
    if (path === "/latest/api/token") {
      if (req.method !== "PUT") {
        // What EC2's IMDS answers a token GET with.
        res.setHeader("allow", "OPTIONS, PUT");
        return reply(req.method === "OPTIONS" ? 200 : 405);
      }
      if (req.headers["x-forwarded-for"] !== undefined) return reply(403);
      const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > maxTtlSeconds) return reply(400);
      if (this.tokens.size >= maxRecorded) this.forgetOldestToken();
      const token = randomBytes(32).toString("base64url");
      this.tokens.set(token, Date.now() + ttl * 1000);
      res.setHeader("x-aws-ec2-metadata-token-ttl-seconds", String(ttl));
      return reply(200, token);
    }
    // A token PUT anywhere else (a version's path, a trailing slash) is forbidden, as AWS documents.
    if (req.method === "PUT") return reply(403);
    if (req.method !== "GET" && req.method !== "HEAD") return reply(405);
    const expires = typeof tokenHeader === "string" ? this.tokens.get(tokenHeader) : undefined;
    if (expires === undefined || expires < Date.now()) return reply(401);
    const body = this.lookup(path);
    return body === undefined ? reply(404) : reply(200, body);
  }

  /** Expired tokens first; else the oldest (a guest asking for more than a thousand needs no more). */
  private forgetOldestToken(): void {
    const now = Date.now();
    for (const [token, expires] of this.tokens) if (expires < now) this.tokens.delete(token);
    if (this.tokens.size >= maxRecorded) this.tokens.delete(this.tokens.keys().next().value as string);
  }

  private lookup(path: string): string | undefined {
    const { instanceId, publicKey, userData, hostname } = this.identity;
    const meta: Record<string, string> = {
      "instance-id": instanceId,
      "hostname": hostname,
      "local-hostname": hostname,
      "public-keys/": "0=kiln-test",
      "public-keys/0/": "openssh-key",
      "public-keys/0/openssh-key": `${publicKey}\n`,
    };
    if (path === "/latest/meta-data/" || path === "/latest/meta-data") return "hostname\ninstance-id\nlocal-hostname\npublic-keys/\n";
    if (path.startsWith("/latest/meta-data/")) return meta[path.slice("/latest/meta-data/".length)];
    if (path === "/latest/user-data") return userData;
    return undefined;
  }
}
