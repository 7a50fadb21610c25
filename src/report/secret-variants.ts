/** A part of a secret shorter than this (one of its lines, a slice of its base64) could be an ordinary word. */
const minimumPartLength = 8;

/**
 * The forms a registered secret commonly takes when a tool prints it, each masked like the value
 * itself: the value as `set -x` quotes it, JSON-escaped, percent-encoded, base64-encoded, and its
 * lines.
 */
export function secretVariants(value: string): string[] {
  const whole = [value, shellQuoted(value), JSON.stringify(value).slice(1, -1), ...percentEncodings(value), ...base64Encodings(value)];
  const parts = base64Slices(value);
  // Output reaches the redactor a line at a time, so a multi-line value never appears whole (nor
  // does `set -x`'s quoting of it, which keeps the newlines): each line of it is masked on its own.
  // Buffering lines instead would hold output back while a secret might still be completing.
  if (/[\r\n]/.test(value)) {
    for (const line of value.split(/\r?\n/)) parts.push(line.trim(), shellQuoted(line.trim()));
  }
  return [...new Set([...whole, ...parts.filter((part) => part.length >= minimumPartLength)])];
}

/** As `set -x` prints a value inside single quotes: a'b becomes 'a'\''b'. */
function shellQuoted(value: string): string {
  return value.replaceAll("'", "'\\''");
}

function percentEncodings(value: string): string[] {
  const encoded: string[] = [];
  for (const encode of [encodeURIComponent, encodeURI]) {
    let form: string;
    try {
      form = encode(value);
    } catch {
      continue; // a lone surrogate has no URL encoding
    }
    encoded.push(form, form.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase()), form.replaceAll("%20", "+"));
  }
  return encoded;
}

/** Standard and URL-safe base64, with and without padding. */
function base64Encodings(value: string): string[] {
  const standard = Buffer.from(value, "utf8").toString("base64");
  return [standard, standard.replace(/=+$/, "")].flatMap(urlSafeToo);
}

/**
 * Inside a longer encoded text (`user:password` in a Basic authorization header) the value starts
 * at one of three byte alignments, and the whole 3-byte groups holding only its bytes encode the
 * same in any such text (as the GitHub Actions runner masks them).
 */
function base64Slices(value: string): string[] {
  const bytes = Buffer.from(value, "utf8");
  const slices: string[] = [];
  for (let skip = 0; skip < 3; skip++) {
    const groups = Math.floor((bytes.length - skip) / 3);
    if (groups > 0) slices.push(bytes.subarray(skip, skip + groups * 3).toString("base64"));
  }
  return slices.flatMap(urlSafeToo);
}

function urlSafeToo(base64: string): string[] {
  return [base64, base64.replaceAll("+", "-").replaceAll("/", "_")];
}
