/**
 * Keys stored encoded: base64 (a Kubernetes Secret's `data:`), hex (xxd -p) and UTF-16 text
 * (Windows PowerShell's `>`). A candidate marker is decoded with the bytes after it, and the
 * decoded bytes go to the same judge as a plain key: base64 of a certificate is no finding.
 */
export type KeyEncoding = "base64" | "hex" | "utf16";

export interface DecodedWindow {
  /** The decoded bytes, one character per byte (latin1), as the plain judge reads text. */
  text: string;
  /** Where "-----BEGIN" starts in `text`; undefined: the decoded bytes hold no marker there. */
  marker: number | undefined;
  /** How the key was stored, for the finding: "base64-encoded", "hex-encoded", "as UTF-16LE text". */
  how: string;
}

/** Encoded characters decoded after a candidate: enough for a 4096-bit RSA key's whole body. */
const encodedWindow = 12 * 1024;
const base64Char = /[A-Za-z0-9+/_-]/;
const hexChar = /[0-9A-Fa-f]/;

/** Decodes the window at a candidate found at `start` in `text` (bytes as latin1). */
export function decodeAt(encoding: KeyEncoding, text: string, start: number): DecodedWindow {
  if (encoding === "base64") {
    // The candidate starts a 4-character group; with the alignments at offsets 1 and 2, the
    // marker's first dashes are in the group before it.
    const from = start >= 4 && [...text.slice(start - 4, start)].every((c) => base64Char.test(c)) ? start - 4 : start;
    const chars = /^[A-Za-z0-9+/_\-=\s]*/.exec(text.slice(from, from + encodedWindow))?.[0] ?? "";
    const decoded = Buffer.from(chars.replace(/\s/g, "").replace(/=[\s\S]*$/, ""), "base64").toString("latin1");
    return { text: decoded, marker: markerWithin(decoded, 3), how: "base64-encoded" };
  }
  if (encoding === "hex") {
    // "---BEGIN" matched: two more dashes (four digits) come before it, maybe across a line break.
    let from = start;
    for (let digits = 0; digits < 4 && from > 0 && /[0-9A-Fa-f\s]/.test(text.charAt(from - 1)); from--) if (hexChar.test(text.charAt(from - 1))) digits++;
    const chars = /^[0-9A-Fa-f\s]*/.exec(text.slice(from, from + encodedWindow))?.[0] ?? "";
    const decoded = Buffer.from(chars.replace(/\s/g, ""), "hex").toString("latin1");
    return { text: decoded, marker: markerWithin(decoded, 0), how: "hex-encoded" };
  }
  // UTF-16: matched from the 4th dash; decoding pairs from the first dash reads the ASCII of a
  // PEM block the same in either byte order, and the byte order is told from the text before.
  const from = start - 6;
  if (from < 0) return { text: "", marker: undefined, how: "as UTF-16 text" };
  const units: string[] = [];
  for (let at = from; at + 1 < text.length && at < from + encodedWindow; at += 2) {
    const unit = text.charCodeAt(at) | (text.charCodeAt(at + 1) << 8);
    units.push(unit < 256 ? String.fromCharCode(unit) : "?");
  }
  const decoded = units.join("");
  return { text: decoded, marker: markerWithin(decoded, 0), how: `as ${byteOrder(text, from)} text` };
}

function markerWithin(decoded: string, most: number): number | undefined {
  const at = decoded.indexOf("-----BEGIN");
  return at === -1 || at > most ? undefined : at;
}

/**
 * UTF-16LE or BE: back over the run of ASCII characters to where it starts, then by its byte
 * order mark, or by which byte of the first character is the zero one.
 */
function byteOrder(text: string, from: number): string {
  let s = from;
  while (s >= 2 && text.charCodeAt(s - 1) === 0 && /[\t\n\r\x20-\x7e]/.test(text.charAt(s - 2))) s -= 2;
  if (text.slice(s - 2, s) === "\xff\xfe") return "UTF-16LE";
  if (text.slice(s - 3, s - 1) === "\xfe\xff") return "UTF-16BE";
  return s > 0 && text.charCodeAt(s - 1) === 0 ? "UTF-16BE" : "UTF-16LE";
}
