import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { waitPolicy } from "./wait-policy.js";

const wait = { delay_seconds: 5, timeout_seconds: 1800, image_timeout_seconds: 14_400 };

describe("waitPolicy", () => {
  it("gives an image hours by default, so an image that takes an hour does not fail the build", () => {
    const image = waitPolicy({ wait }, "image", {});
    assert.ok(image.timeoutSeconds > 3600, `${image.timeoutSeconds}s`);
    assert.equal(image.setting, "wait.image_timeout_seconds");
    assert.deepEqual(waitPolicy({ wait }, "instance", {}), { delaySeconds: 5, timeoutSeconds: 1800, setting: "wait.timeout_seconds" });
  });

  it("takes Packer's aws_polling over AWS_POLL_DELAY_SECONDS / AWS_MAX_ATTEMPTS, and those over kiln's wait", () => {
    const env = { AWS_POLL_DELAY_SECONDS: "10", AWS_MAX_ATTEMPTS: "30" };
    assert.deepEqual(waitPolicy({ wait }, "image", env), { delaySeconds: 10, timeoutSeconds: 300, setting: "AWS_MAX_ATTEMPTS" });
    assert.deepEqual(waitPolicy({ wait, aws_polling: { delay_seconds: 2, max_attempts: 7 } }, "image", env), { delaySeconds: 2, timeoutSeconds: 14, setting: "aws_polling.max_attempts" });
    assert.deepEqual(waitPolicy({ wait, aws_polling: { delay_seconds: 2 } }, "instance", {}), { delaySeconds: 2, timeoutSeconds: 1800, setting: "wait.timeout_seconds" });
  });

  it("refuses an environment value that is not a number, naming it", () => {
    assert.throws(() => waitPolicy({ wait }, "image", { AWS_MAX_ATTEMPTS: "lots" }), /AWS_MAX_ATTEMPTS=lots is not a positive whole number/);
    assert.throws(() => waitPolicy({ wait }, "image", { AWS_POLL_DELAY_SECONDS: "-1" }), /AWS_POLL_DELAY_SECONDS=-1 is not a positive number/);
  });
});
