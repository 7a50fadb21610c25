import { createServer } from "node:http";

/**
 * An instance metadata service with IMDSv2's semantics, as AWS documents them: a session token
 * from `PUT /latest/api/token` with an `X-aws-ec2-metadata-token-ttl-seconds` header (1-21600,
 * else 400), refused with 403 when the PUT carries `X-Forwarded-For` (it came through a proxy);
 * with tokens required, a GET without a valid token is 401; a missing path is 404.
 *
 * Run as its own process inside the test's network namespace:
 *   node imds-emulator.js '{"address":"169.254.169.254","instanceId":"i-0abc","key":"ssh-ed25519 …","tokens":"required"}'
 * It prints `listening` when ready and one JSON line per request it answered.
 */
export interface ImdsSettings {
  address: string;
  port?: number;
  instanceId: string;
  /** The launch key; without it, public-keys/0/openssh-key is 404 (launched without a key pair). */
  key?: string;
  tokens: "required" | "optional";
  /** Answer token PUTs with 403, as a metadata service behind a proxy would. */
  refuseTokens?: boolean;
}

const settings = JSON.parse(process.argv[2] ?? "{}") as ImdsSettings;
const issued = new Set<string>();

const server = createServer((req, res) => {
  const path = req.url ?? "/";
  const answer = (status: number, body = ""): void => {
    process.stdout.write(`${JSON.stringify({ method: req.method, path, status, token: req.headers["x-aws-ec2-metadata-token"] !== undefined, ttl: req.headers["x-aws-ec2-metadata-token-ttl-seconds"] ?? null })}\n`);
    res.writeHead(status, { "content-type": "text/plain" });
    res.end(body);
  };
  if (req.method === "PUT" && path === "/latest/api/token") {
    const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
    if (req.headers["x-forwarded-for"] !== undefined || settings.refuseTokens === true) return answer(403);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return answer(400);
    const token = `token-${issued.size + 1}-${Math.random().toString(36).slice(2)}`;
    issued.add(token);
    return answer(200, token);
  }
  if (req.method !== "GET") return answer(405);
  const token = req.headers["x-aws-ec2-metadata-token"];
  if (typeof token === "string" && !issued.has(token)) return answer(401);
  if (settings.tokens === "required" && token === undefined) return answer(401);
  if (path === "/latest/meta-data/instance-id") return answer(200, settings.instanceId);
  if (path === "/latest/meta-data/public-keys/0/openssh-key" && settings.key !== undefined) return answer(200, `${settings.key}\n`);
  return answer(404);
});

server.listen(settings.port ?? 80, settings.address, () => process.stdout.write("listening\n"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
