import type { Redactor } from "../../report/redact.js";

/**
 * A copy of a JSON document with every string value passed through the redactor. Findings carry
 * masked excerpts already; this is the second line of defence for a report someone may publish.
 * Keys are kiln's own and left alone.
 */
export function redactDocument<T>(document: T, redactor: Redactor): T {
  return redactValue(document, redactor) as T;
}

function redactValue(value: unknown, redactor: Redactor): unknown {
  if (typeof value === "string") return redactor.redact(value);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, redactor));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactValue(item, redactor)]));
  }
  return value;
}
