import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { ebsAction, ebsErrorAnswer } from "./ebs-rest.js";

export { ebsAction, ebsErrorAnswer } from "./ebs-rest.js";

/** What to do to the next calls of one API action. */
export interface Fault {
  /** Answer this many calls with the service's throttling error (EC2 RequestLimitExceeded, EBS RequestThrottledException) first. */
  throttle?: number;
  /** Hold each call this long before forwarding it (dropped if the caller has gone meanwhile). */
  delayMs?: number;
  /** Answer every call with this AWS error (EC2's, STS's or EBS's error shape, by the action); `reason` is EBS's Reason field. */
  error?: { status: number; code: string; message: string; reason?: string };
  /** How many calls get `error` (all of them when absent). */
  errorTimes?: number;
  /** Only calls whose body contains this (a spot request, say) get the fault. */
  match?: string;
  /** Answer every call with this document instead of moto's (a console output, say). */
  answer?: string;
  /** Let this many calls reach moto (which does the work) but answer them with a 500, as when an answer is lost. */
  loseResponse?: number;
  /** Close the connection of this many calls without answering and without letting them reach moto (a crash mid-upload). */
  dropConnection?: number;
}

/** An answer the proxy gives instead of (or after) moto's. */
export interface ProxyAnswer {
  status: number;
  body: string;
}

/** One request as it came, its body untouched (PutSnapshotBlock's is binary). */
export interface ProxyCall {
  action: string;
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** An answer with its headers and a binary-safe body (GetSnapshotBlock's block). */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Speaks for AWS where moto does not: gets the request body and `forward` (moto's own answer to
 * this or another body) and returns the answer to give, e.g. moto's answer shaped as AWS's, or a
 * state moto never shows (a pending image). Undefined lets the call through unchanged.
 */
export type Interceptor = (body: URLSearchParams, forward: (body?: string) => Promise<ProxyAnswer>) => Promise<ProxyAnswer | undefined>;

/**
 * A model of AWS behind every call of a proxy (aws-fidelity.ts): after faults, before moto. It
 * answers itself, or through `forward` (moto), or returns undefined to let moto answer.
 */
export interface Speaker {
  answer(call: ProxyCall, forward: (body?: Buffer) => Promise<RawAnswer>): Promise<RawAnswer | undefined>;
}

/** An AWS query-protocol error document (EC2's shape; STS and IAM use ErrorResponse). */
export function awsErrorAnswer(status: number, code: string, message: string, service: "ec2" | "query" = "ec2"): ProxyAnswer {
  return {
    status,
    body: service === "query"
      ? `<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`
      : `<?xml version="1.0"?><Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`,
  };
}

const xml = (answer: ProxyAnswer): RawAnswer => ({ status: answer.status, headers: { "content-type": "text/xml" }, body: Buffer.from(answer.body) });

/** The action's own error shape: EBS direct REST-JSON, STS's ErrorResponse, or EC2's Response. */
function errorFor(action: string, status: number, code: string, message: string, reason?: string): RawAnswer {
  if (ebsAction.names.has(action)) return ebsErrorAnswer(status, code, message, reason);
  return xml(awsErrorAnswer(status, code, message, action === "GetCallerIdentity" ? "query" : "ec2"));
}

/**
 * A loopback proxy in front of moto that injects throttling and delays into chosen calls (moto
 * has none of its own) and counts calls by action, for retry tests and the API-call benchmark.
 * EBS direct calls (REST, no Action parameter) are named by method and path.
 */
export class FaultProxy {
  readonly calls = new Map<string, number>();
  /** Every action in the order it came. */
  readonly order: string[] = [];
  /** The request bodies of each action, to check what was asked for (a PutSnapshotBlock's binary block as ""; see `requests`). */
  readonly bodies = new Map<string, string[]>();
  /** Every call whole (method, path, headers, raw body), in order. */
  readonly requests: ProxyCall[] = [];
  private readonly faults = new Map<string, Fault>();
  private readonly interceptors = new Map<string, Interceptor>();
  private speaker?: Speaker;
  private server?: Server;
  endpoint = "";

  constructor(private readonly target: string) {}

  /** No faults, no counts: as new, for the next test of a suite that shares one proxy (the speaker stays). */
  reset(): void {
    this.faults.clear();
    this.interceptors.clear();
    this.calls.clear();
    this.order.length = 0;
    this.bodies.clear();
    this.requests.length = 0;
  }

  /** Lets `interceptor` answer every call of one action (see Interceptor). */
  intercept(action: string, interceptor: Interceptor): void {
    this.interceptors.set(action, interceptor);
  }

  inject(action: string, fault: Fault): void {
    this.faults.set(action, { ...fault });
  }

  /** Puts `speaker` (a model of AWS) between the faults and moto; undefined takes it away. */
  speakAs(speaker: Speaker | undefined): void {
    this.speaker = speaker;
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
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const action = ebsAction(method, url) ?? new URLSearchParams(body.toString()).get("Action") ?? new URL(url, "http://x").searchParams.get("Action") ?? "?";
    const call: ProxyCall = { action, method, url, headers: req.headers, body };
    const text = action === "PutSnapshotBlock" ? "" : body.toString();
    this.calls.set(action, (this.calls.get(action) ?? 0) + 1);
    this.order.push(action);
    this.bodies.set(action, [...(this.bodies.get(action) ?? []), text]);
    this.requests.push(call);
    const send = (answer: RawAnswer): void => {
      res.writeHead(answer.status, { ...answer.headers, "content-length": String(answer.body.length) });
      res.end(answer.body);
    };
    const interceptor = this.interceptors.get(action);
    if (interceptor !== undefined) {
      const forward = async (changed = text): Promise<ProxyAnswer> => {
        const answer = await this.spoken({ ...call, body: Buffer.from(changed) });
        return { status: answer.status, body: answer.body.toString() };
      };
      const answer = await interceptor(new URLSearchParams(text), forward).catch((error: unknown) => awsErrorAnswer(500, "InternalError", String(error)));
      if (answer !== undefined) return send(xml(answer));
    }
    const candidate = this.faults.get(action);
    const fault = candidate?.match === undefined || body.toString().includes(candidate.match) ? candidate : undefined;
    if (fault?.dropConnection !== undefined && fault.dropConnection > 0) {
      fault.dropConnection--;
      req.socket.destroy();
      return;
    }
    if (fault?.throttle !== undefined && fault.throttle > 0) {
      fault.throttle--;
      // EBS direct: RequestThrottledException is HTTP 400 with Reason ACCOUNT_THROTTLED (EBS API reference, Errors).
      return send(ebsAction.names.has(action)
        ? ebsErrorAnswer(400, "RequestThrottledException", "The request was throttled.", "ACCOUNT_THROTTLED")
        : errorFor(action, 503, "RequestLimitExceeded", "Request limit exceeded."));
    }
    if (fault?.error !== undefined && (fault.errorTimes === undefined || fault.errorTimes > 0)) {
      if (fault.errorTimes !== undefined) fault.errorTimes--;
      const { status, code, message, reason } = fault.error;
      return send(errorFor(action, status, code, message, reason));
    }
    if (fault?.answer !== undefined) return send(xml({ status: 200, body: fault.answer }));
    if (fault?.delayMs !== undefined) await sleep(fault.delayMs);
    if (req.socket.destroyed) return; // the caller died while held: the call never reaches the cloud
    const lose = fault?.loseResponse !== undefined && fault.loseResponse > 0;
    if (lose && fault?.loseResponse !== undefined) fault.loseResponse--;
    const answer = await this.spoken(call).catch((error: unknown) => errorFor(action, 502, "InternalError", String(error)));
    if (lose) return send(ebsAction.names.has(action) ? ebsErrorAnswer(500, "InternalServerException", "An internal error has occurred.") : errorFor(action, 500, "InternalError", "An internal error has occurred."));
    send(answer);
  }

  /** The speaker's answer to a call, or moto's. */
  private async spoken(call: ProxyCall): Promise<RawAnswer> {
    const forward = (body = call.body): Promise<RawAnswer> => this.forwarded(call, body);
    return (await this.speaker?.answer(call, forward)) ?? forward();
  }

  /** moto's answer to a request with this body (the original's headers, its length fixed). */
  private forwarded(call: ProxyCall, body: Buffer): Promise<RawAnswer> {
    const target = new URL(call.url, this.target);
    return new Promise((resolve, reject) => {
      const headers = { ...call.headers, host: target.host, "content-length": String(body.length) };
      delete headers["transfer-encoding"];
      const forward = request(target, { method: call.method, headers }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on("data", (c: Buffer) => chunks.push(c));
        answer.on("end", () => {
          const kept: Record<string, string> = {};
          for (const [name, value] of Object.entries(answer.headers)) {
            if (value !== undefined && !["content-length", "transfer-encoding", "connection"].includes(name)) kept[name] = String(value);
          }
          resolve({ status: answer.statusCode ?? 502, headers: kept, body: Buffer.concat(chunks) });
        });
      });
      forward.on("error", reject);
      forward.end(body);
    });
  }
}
