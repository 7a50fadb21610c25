/**
 * `npm run bench`, third part: one amazon-ebs build against moto (through a counting proxy), its
 * wall time and the AWS API calls it made, by operation. moto answers at once, so the time is
 * kiln's own overhead; the calls are what a real build would make (plus its polls).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FaultProxy } from "../test/helpers/fault-proxy.js";
import { kilnBin, runKiln } from "../test/helpers/kiln-process.js";
import { execFileSync } from "node:child_process";
import { startMoto } from "../test/helpers/moto.js";

const scratch = mkdtempSync(join(tmpdir(), "kiln-ebs-bench-"));
const moto = await startMoto();
const proxy = new FaultProxy(moto.endpoint);
await proxy.start();
try {
  const template = join(scratch, "bench.yaml");
  writeFileSync(template, [
    "name: bench-ami",
    "builders:",
    "  - type: amazon-ebs",
    "    region: us-east-1",
    `    endpoint: ${proxy.endpoint}`,
    "    source_ami_filter: {filters: {name: amzn2-ami-hvm-*-x86_64-gp2}, owners: [amazon], most_recent: true}",
    "    instance_type: t3.micro",
    "    communicator: none",
    "    ami_name: bench-${{ uuid }}",
    "    wait: {delay_seconds: 1, timeout_seconds: 60}",
    "",
  ].join("\n"));
  const started = process.hrtime.bigint();
  const run = await runKiln(["build", template, "--output-dir", join(scratch, "out")], {
    AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_EC2_METADATA_DISABLED: "true", KILN_STATE_DIR: join(scratch, "state"), AWS_ENDPOINT_URL: proxy.endpoint,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (run.code !== 0) throw new Error(`the build failed:\n${run.stdout}\n${run.stderr}`);
  const calls = [...proxy.calls].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  console.log(`amazon-ebs build against moto: ${seconds.toFixed(2)} s wall (kiln process, moto instant), ${calls.reduce((n, [, c]) => n + c, 0)} API calls:`);
  for (const [action, count] of calls) console.log(`  ${String(count).padStart(4)}  ${action}`);
  // Start-up: kiln validate (which loads no AWS SDK) beside a bare node, in the same run.
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  const timed = (args: string[]): number => { const t = process.hrtime.bigint(); execFileSync(process.execPath, args, { stdio: "ignore" }); return Number(process.hrtime.bigint() - t) / 1e6; };
  const bare = median(Array.from({ length: 7 }, () => timed(["-e", "0"])));
  const validate = median(Array.from({ length: 7 }, () => timed([kilnBin, "validate", template])));
  console.log(`kiln validate start-up: ${validate.toFixed(0)} ms (median of 7) beside node -e 0: ${bare.toFixed(0)} ms (${(validate / bare).toFixed(2)}x)`);
} finally {
  await proxy.stop();
  await moto.stop();
  rmSync(scratch, { recursive: true, force: true });
}
