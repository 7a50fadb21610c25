/** Excerpts shown to people: printable, short, and with every secret character replaced. */
const width = 100;

/** Keeps `keep` leading characters (a public prefix such as AKIA or ghp_) and masks the rest. */
export function maskSecret(value: string, keep = 0): string {
  const shown = value.slice(0, Math.min(keep, value.length));
  return `${shown}${"*".repeat(Math.min(Math.max(value.length - shown.length, 4), 16))}`;
}

/** One line of context, non-printable bytes as '.', the secret at [start, end) masked. */
export function maskedLine(text: string, start: number, end: number, keep = 0): string {
  const lineStart = Math.max(text.lastIndexOf("\n", start - 1) + 1, start - 40);
  const newline = text.indexOf("\n", end);
  const lineEnd = Math.min(newline === -1 ? text.length : newline, end + 40);
  const before = text.slice(lineStart, start);
  const after = text.slice(end, lineEnd);
  return printable(`${before}${maskSecret(text.slice(start, end), keep)}${after}`).slice(0, width).trim();
}

export function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, ".");
}
