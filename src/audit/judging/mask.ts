/** Excerpts shown to people: printable, short, and with every secret character replaced. */
const width = 100;

/** Keeps `keep` leading characters (a public prefix such as AKIA or ghp_) and masks the rest. */
export function maskSecret(value: string, keep = 0): string {
  const shown = value.slice(0, Math.min(keep, value.length));
  return `${shown}${"*".repeat(Math.min(Math.max(value.length - shown.length, 4), 16))}`;
}

/**
 * One line of context around the secret at [start, end), printable and short. Not only that
 * secret is masked: the line may hold others (a CSV of key id and secret, a JSON object of
 * several passwords), so every value after a separator and every random-looking token is too.
 */
export function maskedLine(text: string, start: number, end: number, keep = 0): string {
  const lineStart = Math.max(text.lastIndexOf("\n", start - 1) + 1, start - 40);
  const newline = text.indexOf("\n", end);
  const lineEnd = Math.min(newline === -1 ? text.length : newline, end + 40);
  const before = maskValues(printable(text.slice(lineStart, start)));
  const after = maskValues(printable(text.slice(end, lineEnd)));
  return `${before}${maskSecret(printable(text.slice(start, end)), keep)}${after}`.slice(0, width).trim();
}

// A value: what follows `=`, `:`, `,` or `;` (quoted or not) up to the next separator or space.
const assignedValue = /([=:,;][ \t]*)(["']?)([^"'\s,;=:]+)/g;
// Long runs of key-like characters with a digit or both cases: tokens, ids, base64.
const randomLooking = /[A-Za-z0-9/+_-]{12,}/g;

/** Masks every value and every random-looking token in a piece of excerpt. */
export function maskValues(text: string): string {
  const values = text.replace(assignedValue, (_all, separator: string, quote: string, value: string) => `${separator}${quote}${maskSecret(value)}`);
  return values.replace(randomLooking, (run) => (/[0-9]/.test(run) || (/[a-z]/.test(run) && /[A-Z]/.test(run)) ? maskSecret(run, Math.min(4, /^(?:AKIA|ASIA|gh[pousr]_|xox[a-z]-)/.test(run) ? 4 : 0)) : run));
}

export function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, ".");
}
