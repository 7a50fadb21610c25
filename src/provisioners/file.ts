import { resolve } from "node:path";
import type { FileProvisionerConfig } from "../template/schema.js";
import type { ProvisionerRun } from "./provisioner.js";

/**
 * Copies a file or directory into the target (with an optional mode and owner), or out of it
 * to this machine; paths on this machine are relative to the template.
 */
export async function runFileProvisioner(config: FileProvisionerConfig, run: ProvisionerRun): Promise<void> {
  if (config.direction === "download") {
    await run.communicator.download(config.source, resolve(run.templateDirectory, config.destination) + (config.destination.endsWith("/") ? "/" : ""), {
      what: run.label,
      signal: run.ctx.signal,
      onSkipped: (path, why) => run.ctx.report.warn(`${run.label}: ${path} is ${why}`),
    });
    run.ctx.report.info(`${run.label}: copied ${config.source} from the image to ${config.destination}`);
    return;
  }
  const source = resolve(run.templateDirectory, config.source);
  await run.communicator.upload(source, config.destination, {
    what: run.label,
    signal: run.ctx.signal,
    ...(config.mode === undefined ? {} : { mode: config.mode }),
    ...(config.owner === undefined ? {} : { owner: config.owner }),
  });
  const details = [config.mode, config.owner].filter((d) => d !== undefined).join(", ");
  run.ctx.report.info(`${run.label}: copied ${config.source} to ${config.destination}${details === "" ? "" : ` (${details})`}`);
}
