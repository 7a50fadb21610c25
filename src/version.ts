import { readFileSync } from "node:fs";

/** kiln's own version, from its package.json. */
export const kilnVersion: string = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
