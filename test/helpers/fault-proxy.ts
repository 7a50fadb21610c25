import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";

/** What to do to the next calls of one API action. */
export interface Fault {
  /** Answer this many calls with EC2's throttling error before letting them through. */
  throttle?: number;
  /** Hold each call this long before forwarding it (dropped if the caller has gone meanwhile). */
  delayMs?: number;
  /** Answer every call with this AWS error (EC2's or STS's error document, by the action). */
  error?: { status: number; code: string; message: string };
  /** How many calls get `error` (all of them when absent). */
  errorTimes?: number;
  /** Only calls whose body contains this (a spot request, say) get the fault. */
  match?: string;
  /** Answer every call with this document instead of moto's (a console output, say). */
  answer?: string;
  /** Let this many calls reach moto (which does the work) but answer them with a 500, as when an answer is lost. */
  loseResponse?: number;
}

/** An answer the proxy gives instead of (or after) moto's. */
export interface ProxyAnswer {
  status: number;
  body: string;
}

/**
 * Speaks for AWS where moto does not: gets the request body and `forward` (moto's own answer to
 * this or another body) and returns the answer to give, e.g. moto's answer shaped as AWS's, or a
 * state moto never shows (a pending image). Undefined lets the call through unchanged.
 */
export type Interceptor = (body: URLSearchParams, forward: (body?: string) => Promise<ProxyAnswer>) => Promise<ProxyAnswer | undefined>;

/** An AWS query-protocol error document (EC2's shape; STS and IAM use ErrorResponse). */
export function awsErrorAnswer(status: number, code: string, message: string, service: "ec2" | "query" = "ec2"): ProxyAnswer {
  return {
    status,
    body: service === "query"
      ? `<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`
      : `<?xml version="1.0"?><Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`,
  };
}

/**
 * A loopback proxy in front of moto that injects throttling and delays into chosen calls (moto
 * has none of its own) and counts calls by action, for retry tests and the API-call benchmark.
 */
export class FaultProxy {
  readonly calls = new Map<string, number>();
  /** Every action in the order it came. */
  readonly order: string[] = [];
  /** The request bodies of each action, to check what was asked for. */
  readonly bodies = new Map<string, string[]>();
  private readonly faults = new Map<string, Fault>();
  private readonly interceptors = new Map<string, Interceptor>();
  private server?: Server;
  endpoint = "";

  constructor(private readonly target: string) {}

  /** No faults, no counts: as new, for the next test of a suite that shares one proxy. */
  reset(): void {
    this.faults.clear();
    this.interceptors.clear();
    this.calls.clear();
    this.order.length = 0;
    this.bodies.clear();
  }

  /** Lets `interceptor` answer every call of one action (see Interceptor). */
  intercept(action: string, interceptor: Interceptor): void {
    this.interceptors.set(action, interceptor);
  }

  inject(action: string, fault: Fault): void {
    this.faults.set(action, { ...fault });
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.endpoint = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const action = new URLSearchParams(body.toString()).get("Action") ?? new URL(req.url ?? "/", "http://x").searchParams.get("Action") ?? "?";
    this.calls.set(action, (this.calls.get(action) ?? 0) + 1);
    this.order.push(action);
    this.bodies.set(action, [...(this.bodies.get(action) ?? []), body.toString()]);
    const interceptor = this.interceptors.get(action);
    if (interceptor !== undefined) {
      const forward = (text = body.toString()): Promise<ProxyAnswer> => this.forwarded(req, text);
      const answer = await interceptor(new URLSearchParams(body.toString()), forward).catch((error: unknown) => awsErrorAnswer(500, "InternalError", String(error)));
      if (answer !== undefined) {
        res.writeHead(answer.status, { "content-type": "text/xml" });
        res.end(answer.body);
        return;
      }
    }
    const candidate = this.faults.get(action);
    const fault = candidate?.match === undefined || body.toString().includes(candidate.match) ? candidate : undefined;
    if (fault?.throttle !== undefined && fault.throttle > 0) {
      fault.throttle--;
      res.writeHead(503, { "content-type": "text/xml" });
      res.end("<?xml version=\"1.0\"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>");
      return;
    }
    if (fault?.error !== undefined && (fault.errorTimes === undefined || fault.errorTimes > 0)) {
      if (fault.errorTimes !== undefined) fault.errorTimes--;
      const { status, code, message } = fault.error;
      res.writeHead(status, { "content-type": "text/xml" });
      // STS (query API) and EC2 word their error documents differently.
      res.end(action === "GetCallerIdentity"
        ? `<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`
        : `<?xml version="1.0"?><Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`);
      return;
    }
    if (fault?.answer !== undefined) {
      res.writeHead(200, { "content-type": "text/xml" });
      res.end(fault.answer);
      return;
    }
    if (fault?.delayMs !== undefined) await sleep(fault.delayMs);
    if (req.socket.destroyed) return; // the caller died while held: the call never reaches the cloud
    const target = new URL(req.url ?? "/", this.target);
    const lose = fault?.loseResponse !== undefined && fault.loseResponse > 0;
    if (lose && fault?.loseResponse !== undefined) fault.loseResponse--;
    const forward = request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (answer) => {
      if (lose) {
        answer.resume();
        res.writeHead(500, { "content-type": "text/xml" });
        res.end("<?xml version=\"1.0\"?><Response><Errors><Error><Code>InternalError</Code><Message>An internal error has occurred.</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>");
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on("error", () => { res.writeHead(502); res.end(); });
    forward.end(body);
  }

  /** moto's answer to a request with this body (the original's headers, its length fixed). */
  private forwarded(req: IncomingMessage, text: string): Promise<ProxyAnswer> {
    const target = new URL(req.url ?? "/", this.target);
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: target.host, "content-length": String(Buffer.byteLength(text)) };
      const call = request(target, { method: req.method, headers }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on("data", (c: Buffer) => chunks.push(c));
        answer.on("end", () => resolve({ status: answer.statusCode ?? 502, body: Buffer.concat(chunks).toString() }));
      });
      call.on("error", reject);
      call.end(text);
    });
  }
}
