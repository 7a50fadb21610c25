import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { amazonEbsPipeline } from "./amazon-ebs/amazon-ebs-builder.js";
import type { AmazonEbsFacts } from "./amazon-ebs/plan-facts.js";
import { localBuilder } from "./local/local-builder.js";
import { template as templateSchema } from "../template/schema.js";
import type { LoadedTemplate } from "../template/load.js";

const loaded = (builder: Record<string, unknown>): LoadedTemplate => {
  const template = templateSchema.parse({ name: "t", builders: [builder] });
  return { file: "t.yaml", directory: "/", template, sourceText: "", variables: new Map(), startedAt: new Date(0), warnings: [], packer: false, derivedSecrets: [] };
};
const ebs = { type: "amazon-ebs", region: "us-east-1", source_ami: "ami-0123456789abcdef0", instance_type: "t3.micro", ami_name: "kiln-test" };

// Every composition a template can ask for: each step in it says its own plan.
const compositions = {
  "linux over SSH": { ...ebs, ssh_username: "admin" },
  "linux, communicator none": { ...ebs, communicator: "none" },
  "windows with password": { ...ebs, platform: "windows", windows: { get_password: true } },
  "windows, no sysprep, communicator none": { ...ebs, platform: "windows", communicator: "none", windows: { generalize: false } },
};

describe("every pipeline's plan comes from its steps", () => {
  for (const [name, builder] of Object.entries(compositions)) {
    it(`amazon-ebs, ${name}`, () => {
      const l = loaded(builder);
      const config = l.template.builders[0];
      assert.ok(config?.type === "amazon-ebs");
      const facts: AmazonEbsFacts = { loaded: l, builder: config, buildId: "t-<time>-<random>", region: "us-east-1", source: "ami-0123456789abcdef0", userData: "none", ssh: { address: "the instance's public IP", cidrs: "203.0.113.7/32" }, imageName: "free", tags: () => ({}) };
      const pipeline = amazonEbsPipeline(config);
      const plan = pipeline.plan(facts);
      assert.deepEqual(plan.map((p) => p.step), pipeline.stepNames, "one plan per step, in order");
      for (const step of plan) assert.ok(Array.isArray(step.calls) && Array.isArray(step.creates), step.step);
      const names = pipeline.stepNames;
      assert.equal(names.includes("password (Windows)"), config.platform === "windows" && config.windows.get_password, "the password step only where asked for");
      assert.equal(names.includes("harden build instance"), config.platform === "linux" && config.communicator === "ssh", "Linux hardening only over SSH on Linux");
      assert.equal(names.includes("generalize build instance"), config.platform === "windows" && config.communicator === "ssh" && config.windows.generalize);
      assert.equal(names.includes("connect over SSH"), config.communicator === "ssh");
    });
  }

  it("local", () => {
    const l = loaded({ type: "local", base: { mmdebstrap: { suite: "bookworm" } } });
    const config = l.template.builders[0];
    assert.ok(config?.type === "local");
    const plan = localBuilder.plan({ loaded: l, builder: config });
    assert.deepEqual(plan.map((p) => p.step), localBuilder.stepNames);
    assert.match(plan.find((p) => p.step === "base root filesystem")?.note ?? "", /mmdebstrap bookworm/);
  });
});
