import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatGoTime, goDurationSeconds } from "./go-time.js";
import { EngineError, renderPacker, translatePacker, type EngineScope } from "./template-engine.js";

// Saturday 7 March 2026, 09:05:03.120 UTC, day 66 of the year.
const date = new Date(Date.UTC(2026, 2, 7, 9, 5, 3, 120));
const afternoon = new Date(Date.UTC(2026, 11, 31, 23, 59, 58, 0));

describe("Go reference-time layouts (Packer's isotime)", () => {
  const cases: [string, Date, string][] = [
    ["2006-01-02T15:04:05Z07:00", date, "2026-03-07T09:05:03Z"],
    ["2006-01-02-1504", date, "2026-03-07-0905"],
    ["Jan _2 15:04:05", date, "Mar  7 09:05:03"],
    ["Jan _2 15:04:05", afternoon, "Dec 31 23:59:58"],
    ["Monday, January 2, 2006 3:04PM", date, "Saturday, March 7, 2026 9:05AM"],
    ["Mon Jan 2 03:04:05 pm MST 2006", afternoon, "Thu Dec 31 11:59:58 pm UTC 2026"],
    ["06/1/2 3:4:5", date, "26/3/7 9:5:3"],
    ["15:04:05.000", date, "09:05:03.120"],
    ["15:04:05.999", date, "09:05:03.12"],
    ["15:04:05,000000", date, "09:05:03,120000"],
    ["05.999", afternoon, "58"],
    ["2006 002 __2", date, "2026 066  66"],
    ["-0700 -07:00 -07 Z0700", date, "+0000 +00:00 +00 Z"],
    ["Janet Monk", date, "Janet Monk"],
    ["_2006", date, "_2026"],
    ["kiln-20060102", date, "kiln-20260307"],
  ];
  for (const [layout, when, expected] of cases) {
    it(`${layout} → ${expected}`, () => assert.equal(formatGoTime(when, layout), expected));
  }

  it("reads Go durations (Packer's timeouts)", () => {
    assert.equal(goDurationSeconds("5m"), 300);
    assert.equal(goDurationSeconds("1h30m"), 5400);
    assert.equal(goDurationSeconds("1.5h"), 5400);
    assert.equal(goDurationSeconds("90s"), 90);
    assert.equal(goDurationSeconds("soon"), undefined);
  });
});

describe("Packer's template engine", () => {
  const scope: EngineScope = {
    user: new Map([["image_name", "Windows Image"], ["prefix", "windows-base"]]),
    env: { AWS_REGION: "eu-west-1" },
    now: date,
    buildName: "amazon-ebs",
    buildType: "amazon-ebs",
  };

  it("renders every function Packer templates use", () => {
    assert.equal(renderPacker("{{ user `image_name` }}", scope), "Windows Image");
    assert.equal(renderPacker("{{user \"prefix\"}}-{{isotime \"2006-01-02-1504\"}}", scope), "windows-base-2026-03-07-0905");
    assert.equal(renderPacker("{{ env `AWS_REGION` }}/{{ env `UNSET` }}.", scope), "eu-west-1/.");
    assert.equal(renderPacker("{{isotime}}", scope), "2026-03-07T09:05:03Z");
    assert.equal(renderPacker("{{timestamp}}", scope), String(Math.floor(date.getTime() / 1000)));
    assert.match(renderPacker("{{uuid}}", scope), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(renderPacker("{{build_name}} {{build_type}}", scope), "amazon-ebs amazon-ebs");
    // AWS's clean_resource_name (and clean_ami_name): case and ( ) [ ] . / ' @ _ - and spaces stay.
    assert.equal(renderPacker("{{ clean_resource_name `My Image:v1.2 (test)*` }}", scope), "My Image-v1.2 (test)-");
    assert.equal(renderPacker("{{ isotime `Jan 02 15:04` | clean_resource_name }}", scope), "Mar 07 09-05");
    assert.equal(renderPacker("{{ clean_ami_name (isotime `15:04`) }}", scope), "09-05", "a parenthesized pipeline as an argument");
    assert.equal(renderPacker("{{\"{{\"}} literal", scope), "{{ literal");
    assert.equal(renderPacker("a  {{- `b` -}}  c", scope), "abc", "Go's trim markers");
    assert.equal(renderPacker("chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh '{{ .Path }}'", scope), "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh '{{ .Path }}'", "a provisioner's placeholders stay for later");
    assert.equal(renderPacker("{{ split `a-b-c` `-` 1 }}", scope), "b");
    assert.equal(renderPacker("no actions, ${HOME} and $1 stay", scope), "no actions, ${HOME} and $1 stay");
  });

  it("reports every value computed from a sensitive variable, so it can be hidden too", () => {
    const secrets: string[] = [];
    const sensitive = { ...scope, user: new Map([["token", "TopSecret"]]), sensitive: new Set(["token"]) };
    assert.equal(renderPacker("ami-{{ user `token` | clean_resource_name }}-{{ isotime `2006` }}", sensitive, (s) => secrets.push(s)), "ami-TopSecret-2026");
    assert.deepEqual(secrets, ["TopSecret"]);
    assert.throws(() => translatePacker("{{ user `token` | clean_resource_name }}", sensitive, () => undefined), /uses a sensitive variable and kiln cannot express it/);
  });

  it("names an unknown function or variable, with a guess", () => {
    assert.throws(() => renderPacker("{{ isotim `2006` }}", scope), (e: unknown) => e instanceof EngineError && e.message === "unknown function \"isotim\" (did you mean \"isotime\"?)");
    assert.throws(() => renderPacker("{{ user `image_nam` }}", scope), (e: unknown) => e instanceof EngineError && e.message === "unknown variable \"image_nam\" (did you mean \"image_name\"?)");
    assert.throws(() => renderPacker("{{ split `a-b` `-` 5 }}", scope), /split: index 5 is out of range \(2 parts\)/);
    assert.throws(() => renderPacker("{{ user }}", scope), /user takes 1 argument, not 0/);
  });

  it("translates what kiln's expressions can say, and evaluates the rest (saying so)", () => {
    const evaluated: string[] = [];
    const text = translatePacker("{{user `prefix`}}-{{isotime \"2006-01-02\"}}-{{timestamp}}-{{env `HOME`}}-{{build_name}} ${HOME}", scope, (a) => evaluated.push(a));
    assert.equal(text, "${{ var.prefix }}-${{ isotime \"2006-01-02\" }}-${{ timestamp }}-${{ env.HOME }}-amazon-ebs ${HOME}");
    assert.deepEqual(evaluated, ["build_name"]);
  });
});
