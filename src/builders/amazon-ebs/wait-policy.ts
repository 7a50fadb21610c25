import { UsageError } from "../../errors.js";
import type { AmazonEbsBuilderConfig } from "../../template/schema.js";

/** How often and how long one kind of wait polls, and the setting that makes it longer. */
export interface WaitPolicy {
  delaySeconds: number;
  timeoutSeconds: number;
  /** Named in a timed-out wait's message: what to raise. */
  setting: string;
}

function positive(name: string, text: string | undefined, integer: boolean): number | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new UsageError(`${name}=${text} is not a positive ${integer ? "whole number" : "number"}`, `unset ${name}, or set it like ${integer ? "120" : "15"}`);
  }
  return value;
}

/**
 * The waits of a build as Packer users set them: `aws_polling` in the template first, then
 * AWS_POLL_DELAY_SECONDS and AWS_MAX_ATTEMPTS, then kiln's own `wait`. With a number of attempts
 * a wait lasts attempts × delay; without, an instance has `wait.timeout_seconds` to run or stop
 * and an image `wait.image_timeout_seconds` (hours: a large image or a copy to a far region takes
 * long, and failing then would throw away the whole build).
 */
export function waitPolicy(builder: Pick<AmazonEbsBuilderConfig, "wait" | "aws_polling">, kind: "instance" | "image", env: NodeJS.ProcessEnv = process.env): WaitPolicy {
  const envDelay = positive("AWS_POLL_DELAY_SECONDS", env.AWS_POLL_DELAY_SECONDS, false);
  const envAttempts = positive("AWS_MAX_ATTEMPTS", env.AWS_MAX_ATTEMPTS, true);
  const delaySeconds = builder.aws_polling?.delay_seconds ?? envDelay ?? builder.wait.delay_seconds;
  const attempts = builder.aws_polling?.max_attempts ?? envAttempts;
  if (attempts !== undefined) {
    return { delaySeconds, timeoutSeconds: attempts * delaySeconds, setting: builder.aws_polling?.max_attempts !== undefined ? "aws_polling.max_attempts" : "AWS_MAX_ATTEMPTS" };
  }
  const envTimeout = positive("AWS_TIMEOUT_SECONDS", env.AWS_TIMEOUT_SECONDS, false);
  if (envTimeout !== undefined) return { delaySeconds, timeoutSeconds: envTimeout, setting: "AWS_TIMEOUT_SECONDS" };
  return kind === "image"
    ? { delaySeconds, timeoutSeconds: builder.wait.image_timeout_seconds, setting: "wait.image_timeout_seconds" }
    : { delaySeconds, timeoutSeconds: builder.wait.timeout_seconds, setting: "wait.timeout_seconds" };
}
