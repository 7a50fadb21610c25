import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KilnError } from "../../errors.js";
import { AwsError, awsError, awsEventually, notYetVisible } from "./aws-errors.js";

/** An error shaped as the SDK throws them: the AWS error code is its name. */
function sdkError(name: string, message = "from AWS"): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

describe("AWS errors", () => {
  it("names what kiln was doing, the AWS code, and what to do", () => {
    const denied = awsError("creating the temporary security group (ec2:CreateSecurityGroup)", sdkError("UnauthorizedOperation", "You are not authorized"));
    assert.ok(denied instanceof AwsError && denied instanceof KilnError);
    assert.equal(denied.code, "KILN_AWS");
    assert.equal(denied.awsCode, "UnauthorizedOperation", "the service's code, as a field");
    assert.equal(denied.message, "creating the temporary security group (ec2:CreateSecurityGroup): UnauthorizedOperation: You are not authorized");
    assert.match(denied.hint ?? "", /add the permission/);
    assert.match((awsError("launching", sdkError("InvalidAMIID.Malformed")) as KilnError).hint ?? "", /source image does not exist/, "a family of codes shares its hint");
  });

  it("points at region, endpoint and network when AWS cannot be reached (a region that does not exist)", () => {
    const unreachable = Object.assign(new Error("getaddrinfo ENOTFOUND sts.xx-nowhere-1.amazonaws.com"), { code: "ENOTFOUND" });
    assert.match((awsError("checking the AWS credentials", unreachable) as KilnError).hint ?? "", /check the region, the endpoint and the network/);
  });

  it("tells a just-created resource that is not yet visible from one that does not exist", () => {
    assert.ok(notYetVisible(awsError("x", sdkError("InvalidGroup.NotFound"))));
    assert.ok(notYetVisible(sdkError("InvalidParameterValue", "Value (kiln-b) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name")));
    assert.ok(!notYetVisible(sdkError("InvalidParameterValue", "Invalid value 'zz9.mega' for InstanceType.")));
    assert.ok(!notYetVisible(sdkError("UnauthorizedOperation")));
  });
});

describe("awsEventually", () => {
  const signal = new AbortController().signal;

  it("retries while the resource is not yet visible, then returns the answer", async () => {
    let calls = 0;
    const answer = await awsEventually("tagging", () => {
      calls++;
      return calls < 3 ? Promise.reject(sdkError("InvalidSnapshot.NotFound")) : Promise.resolve("tagged");
    }, signal);
    assert.equal(answer, "tagged");
    assert.equal(calls, 3);
  });

  it("lets any other error through at once, and gives up at its deadline", async () => {
    let calls = 0;
    await assert.rejects(awsEventually("tagging", () => { calls++; return Promise.reject(sdkError("UnauthorizedOperation")); }, signal), /tagging: UnauthorizedOperation/);
    assert.equal(calls, 1);
    const started = Date.now();
    await assert.rejects(awsEventually("describing", () => Promise.reject(sdkError("InvalidAMIID.NotFound")), signal, 1), /describing: InvalidAMIID\.NotFound/);
    assert.ok(Date.now() - started < 3000, "bounded by its deadline");
  });
});
