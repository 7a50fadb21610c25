import type { ContentContext } from "./content-scanner.js";

// Where an administrator's configuration and logs live; /usr (but /usr/local) holds packaged
// documentation and examples, full of `password = secret` lines that are not secrets.
const configPlaces = /^\/(?:etc|var\/log|root|home|opt|srv|usr\/local|var\/www|var\/lib\/cloud|var\/spool\/cron|tmp|var\/tmp|ProgramData|Users)(?:\/|$)/i;
const configNames = /(?:^\.|\.(?:conf|cfg|cnf|ini|env|properties|ya?ml|toml|json|xml|config|log|txt|sh|ps1)$)/i;

/** How a file's bytes are judged; binary when a NUL byte appears near the start, as grep decides. */
export function contextFor(path: string, head: Buffer): ContentContext {
  if (head.subarray(0, 8000).includes(0)) return "binary";
  return textContextFor(path);
}

/** How a file's text is judged, from its path alone. */
export function textContextFor(path: string): ContentContext {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return configPlaces.test(path) || (configNames.test(name) && !path.startsWith("/usr/")) ? "config" : "text";
}
