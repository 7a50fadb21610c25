/**
 * Go's reference-time layouts (`2006-01-02T15:04:05Z07:00`), as Packer's `isotime` takes them,
 * formatted in UTC (Packer's isotime is UTC). Each chunk is recognized the way Go's
 * time.Format scans a layout; everything else is copied as it is.
 */
const months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

type Chunk = { token: string; format: (d: Date) => string };

const pad = (n: number, width: number, fill = "0"): string => String(n).padStart(width, fill);
const hour12 = (d: Date): number => (d.getUTCHours() % 12 === 0 ? 12 : d.getUTCHours() % 12);
const dayOfYear = (d: Date): number => Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;

// Longest first where one token starts another (Go's nextStdChunk order).
const chunks: Chunk[] = [
  { token: "January", format: (d) => months[d.getUTCMonth()] ?? "" },
  { token: "Jan", format: (d) => (months[d.getUTCMonth()] ?? "").slice(0, 3) },
  { token: "Monday", format: (d) => days[d.getUTCDay()] ?? "" },
  { token: "Mon", format: (d) => (days[d.getUTCDay()] ?? "").slice(0, 3) },
  { token: "MST", format: () => "UTC" },
  { token: "2006", format: (d) => pad(d.getUTCFullYear(), 4) },
  { token: "-07:00:00", format: () => "+00:00:00" },
  { token: "-070000", format: () => "+000000" },
  { token: "-07:00", format: () => "+00:00" },
  { token: "-0700", format: () => "+0000" },
  { token: "-07", format: () => "+00" },
  { token: "Z07:00:00", format: () => "Z" },
  { token: "Z070000", format: () => "Z" },
  { token: "Z07:00", format: () => "Z" },
  { token: "Z0700", format: () => "Z" },
  { token: "Z07", format: () => "Z" },
  { token: "002", format: (d) => pad(dayOfYear(d), 3) },
  { token: "__2", format: (d) => pad(dayOfYear(d), 3, " ") },
  { token: "01", format: (d) => pad(d.getUTCMonth() + 1, 2) },
  { token: "02", format: (d) => pad(d.getUTCDate(), 2) },
  { token: "03", format: (d) => pad(hour12(d), 2) },
  { token: "04", format: (d) => pad(d.getUTCMinutes(), 2) },
  { token: "05", format: (d) => pad(d.getUTCSeconds(), 2) },
  { token: "06", format: (d) => pad(d.getUTCFullYear() % 100, 2) },
  { token: "_2", format: (d) => pad(d.getUTCDate(), 2, " ") },
  { token: "15", format: (d) => pad(d.getUTCHours(), 2) },
  { token: "1", format: (d) => String(d.getUTCMonth() + 1) },
  { token: "2", format: (d) => String(d.getUTCDate()) },
  { token: "3", format: (d) => String(hour12(d)) },
  { token: "4", format: (d) => String(d.getUTCMinutes()) },
  { token: "5", format: (d) => String(d.getUTCSeconds()) },
  { token: "PM", format: (d) => (d.getUTCHours() >= 12 ? "PM" : "AM") },
  { token: "pm", format: (d) => (d.getUTCHours() >= 12 ? "pm" : "am") },
];

/** `.000` (always that many digits) or `.999` (trailing zeros dropped), also with a comma. */
function fraction(layout: string, at: number, d: Date): { length: number; text: string } | undefined {
  const m = /^[.,](0+|9+)(?![0-9])/.exec(layout.slice(at));
  if (m === null || m[1] === undefined) return undefined;
  // JavaScript dates carry milliseconds; finer digits are zeros.
  const digits = `${pad(d.getUTCMilliseconds(), 3)}000000`.slice(0, m[1].length);
  if (m[1][0] === "0") return { length: m[0].length, text: `${m[0][0]}${digits}` };
  const trimmed = digits.replace(/0+$/, "");
  return { length: m[0].length, text: trimmed === "" ? "" : `${m[0][0]}${trimmed}` };
}

export function formatGoTime(date: Date, layout: string): string {
  let out = "";
  for (let at = 0; at < layout.length;) {
    const frac = fraction(layout, at, date);
    if (frac !== undefined) {
      out += frac.text;
      at += frac.length;
      continue;
    }
    // "_2006" is a literal underscore and the year, not "_2" (the space-padded day).
    if (layout.startsWith("_2006", at)) {
      out += "_";
      at += 1;
      continue;
    }
    const chunk = chunks.find((c) => layout.startsWith(c.token, at));
    // Go reads "Jan" only when no lower-case letter follows ("Janet" is literal), and the same for "Mon".
    const wordChunk = chunk !== undefined && /^[A-Z][a-z]+$/.test(chunk.token) && chunk.token !== "January" && chunk.token !== "Monday" && /[a-z]/.test(layout[at + chunk.token.length] ?? "");
    if (chunk === undefined || wordChunk) {
      out += layout[at];
      at += 1;
      continue;
    }
    out += chunk.format(date);
    at += chunk.token.length;
  }
  return out;
}

/** Go's duration strings as Packer's options take them (`5m`, `1h30m`, `90s`, `1.5h`), in seconds. */
export function goDurationSeconds(text: string): number | undefined {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  if (!/^(\d+(\.\d+)?(h|m|s|ms))+$/.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) total += Number(m[1]) * (units[m[2] ?? "s"] ?? 1);
  return total;
}
