import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./free-port.js";

/** A moto server (the AWS API emulator in this machine's Python) on a free loopback port. */
export interface Moto {
  endpoint: string;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMoto(env: NodeJS.ProcessEnv = {}): Promise<Moto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn("python3", ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore", env: { ...process.env, ...env } });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto exited with code ${child.exitCode} (is moto installed in this machine's python3?)`);
    const ok = await fetch(`${endpoint}/moto-api/`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error("moto did not answer within 60 s");
    await sleep(200);
  }
  return {
    endpoint,
    reset: async () => { await fetch(`${endpoint}/moto-api/reset`, { method: "POST" }); },
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.on("exit", resolve)));
    },
  };
}
