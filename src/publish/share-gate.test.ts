import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AuditResult } from "../audit/report/audit-result.js";
import { rules } from "../audit/rules.js";
import { KilnError } from "../errors.js";
import { refuseIfFailed } from "./share-gate.js";

const finding = (severity: "info" | "high" | "critical") => ({ rule: rules.privateKey, severity, location: { kind: "file" as const, path: "/x" }, message: "m" });
const result = (findings: ReturnType<typeof finding>[]): AuditResult => ({ image: "disk.raw", format: "raw", findings, accepted: [], filesScanned: 1, bytesScanned: 1, seconds: 0, failOn: "high", problems: [] });

describe("the share gate's refusal", () => {
  it("counts only the findings at or above fail_on, not the info-level ones listed beside them", () => {
    assert.throws(() => refuseIfFailed([result([finding("critical"), finding("info"), finding("info"), finding("high")])], "image ami-1", { users: [], public: true }),
      (e: unknown) => e instanceof KilnError && /image ami-1 was not shared with everyone \(public\): its audit found 2 findings at or above high/.test(e.message));
  });

  it("lets an audit with info findings only through", () => {
    refuseIfFailed([result([finding("info")])], "image ami-1", { users: ["123456789012"], public: false });
  });
});
