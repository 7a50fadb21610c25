import type { RawAnswer } from "./fault-proxy.js";

/** The EBS direct APIs' routes (EBS API reference, each action's Request Syntax): REST, so no Action parameter. */
const routes: [method: string, path: RegExp, action: string][] = [
  ["POST", /^\/snapshots$/, "StartSnapshot"],
  ["POST", /^\/snapshots\/completion\/[^/]+$/, "CompleteSnapshot"],
  ["PUT", /^\/snapshots\/[^/]+\/blocks\/\d+$/, "PutSnapshotBlock"],
  ["GET", /^\/snapshots\/[^/]+\/blocks$/, "ListSnapshotBlocks"],
  ["GET", /^\/snapshots\/[^/]+\/blocks\/\d+$/, "GetSnapshotBlock"],
  ["GET", /^\/snapshots\/[^/]+\/changedblocks$/, "ListChangedBlocks"],
];

/** The EBS direct action a request is (by method and path), or undefined for a query-protocol call. */
export const ebsAction = Object.assign(
  (method: string, url: string): string | undefined => {
    const path = url.split("?")[0] ?? "";
    return routes.find(([m, p]) => m === method && p.test(path))?.[2];
  },
  { names: new Set(routes.map(([, , action]) => action)) },
);

/** The snapshot id and block index in an EBS direct path (/snapshots/{id}/blocks/{index}, /snapshots/completion/{id}). */
export function ebsPath(url: string): { snapshotId: string; blockIndex?: number; query: URLSearchParams } {
  const parsed = new URL(url, "http://x");
  const parts = parsed.pathname.split("/").filter((p) => p !== "");
  const snapshotId = decodeURIComponent(parts[1] === "completion" ? parts[2] ?? "" : parts[1] ?? "");
  const blockIndex = parts[2] === "blocks" && parts[3] !== undefined ? Number(parts[3]) : undefined;
  return { snapshotId, blockIndex, query: parsed.searchParams };
}

/**
 * An EBS direct error as the service sends it (REST-JSON): the type in x-amzn-ErrorType, and
 * {"message", "Reason"} in the body, so the SDK builds e.g. a ValidationException with its Reason.
 */
export function ebsErrorAnswer(status: number, type: string, message: string, reason?: string): RawAnswer {
  return {
    status,
    headers: { "content-type": "application/json", "x-amzn-errortype": type, "x-amzn-requestid": "fault-proxy" },
    body: Buffer.from(JSON.stringify(reason === undefined ? { message } : { message, Reason: reason })),
  };
}

/** A JSON answer of the EBS direct APIs. */
export function ebsJsonAnswer(status: number, document: unknown, headers: Record<string, string> = {}): RawAnswer {
  return { status, headers: { "content-type": "application/json", ...headers }, body: Buffer.from(JSON.stringify(document)) };
}

/** EBS's ValidationException (HTTP 400) with one of the API's documented Reason values. */
export const ebsInvalid = (reason: string, message: string): RawAnswer => ebsErrorAnswer(400, "ValidationException", message, reason);
