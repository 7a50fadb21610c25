import { decodeAt, type KeyEncoding } from "./encoded-keys.js";
import { maskedLine, maskSecret, printable } from "./mask.js";
import { rules, type Rule, type Severity } from "../rules.js";
import { combinedPattern, patternOf } from "../candidates/secret-patterns.js";

/**
 * How bytes are judged: `config` (configuration and log files, where `password=` means a
 * password), `text` (documentation and code, where it usually does not), `binary` (a stock
 * program quoting `BEGIN OPENSSH PRIVATE KEY` is not a key), `unallocated` (deleted data: no
 * context left, every shape counts).
 */
export type ContentContext = "config" | "text" | "binary" | "unallocated";

export interface ContentMatch {
  rule: Rule;
  severity: Severity;
  /** Offset of the secret in the scanned text (one character per byte). */
  offset: number;
  message: string;
  excerpt: string;
}

type Judge = (text: string, start: number, end: number, context: ContentContext) => Omit<ContentMatch, "offset"> | undefined;

/**
 * Finds the secrets in `text` (bytes decoded as latin1, so offsets are byte offsets). Only
 * candidates starting in [from, to) are reported; the text around them is context.
 */
export function scanContent(text: string, context: ContentContext, from = 0, to = text.length): ContentMatch[] {
  const pattern = combinedPattern();
  pattern.lastIndex = from;
  const found: ContentMatch[] = [];
  for (let m = pattern.exec(text); m !== null && m.index < to; m = pattern.exec(text)) {
    const name = patternOf(m[0]);
    const judged = name === undefined ? undefined : judges[name](text, m.index, m.index + m[0].length, context);
    if (judged !== undefined) found.push({ ...judged, offset: m.index });
  }
  return found;
}

const sticky = combinedPattern("y");

/**
 * Judges the one candidate that starts exactly at `position` (where the raw scan found it):
 * a sticky match, so no time goes on searching the rest of the window.
 */
export function judgeAt(text: string, position: number, context: ContentContext): ContentMatch[] {
  sticky.lastIndex = position;
  const m = sticky.exec(text);
  const name = m === null ? undefined : patternOf(m[0]);
  const judged = m === null || name === undefined ? undefined : judges[name](text, position, position + m[0].length, context);
  return judged === undefined ? [] : [{ ...judged, offset: position }];
}

/** 1-based line of a byte offset. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) line++;
  return line;
}

const base64Body = /^(?:[ \t]*[A-Za-z0-9+/=]{4,}\r?\n?)+/;

const privateKey: Judge = (text, start, end) => {
  const marker = text.slice(start, end);
  // A real PEM block: the marker ends its line and base64 follows, maybe after headers, maybe
  // indented (a YAML block scalar) or with its line breaks escaped (a JSON string: "\n").
  // Stock binaries hold the marker as a bare C string, followed by NUL, not by a key.
  let after = text.slice(end, end + 4608);
  if (after.startsWith("\\n")) after = after.replace(/\\n/g, "\n");
  const rest = /^\r?\n((?:[ \t]*[A-Za-z-]+: [^\n]*\n)*)(?:[ \t]*\r?\n)?/.exec(after);
  if (rest === null) return undefined;
  const body = base64Body.exec(after.slice(rest[0].length))?.[0].replace(/\s/g, "") ?? "";
  if (body.length < 64) return undefined;
  const kind = marker.slice(11, -17).trim() || "PKCS#8";
  const encrypted = kind === "ENCRYPTED" || /ENCRYPTED/.test(rest[1] ?? "") || (kind === "OPENSSH" && openSshCipher(body) !== "none");
  const what = `${encrypted ? "passphrase-protected " : "unencrypted "}${kind === "ENCRYPTED" ? "PKCS#8" : kind} private key`;
  // Without the dashes: the excerpt names the block without looking like one to the redactor.
  const excerpt = `${marker.replace(/-/g, "")} block, ${body.length} characters of key (masked)`;
  return encrypted
    ? { rule: rules.encryptedPrivateKey, severity: rules.encryptedPrivateKey.severity, message: what, excerpt }
    : { rule: rules.privateKey, severity: rules.privateKey.severity, message: what, excerpt };
};

const marker = /-----BEGIN[A-Z0-9 ]{0,32}PRIVATE KEY-----/y;

/** A key stored encoded: the bytes around the candidate decoded, and judged as a plain key. */
const encodedKey = (encoding: KeyEncoding): Judge => (text, start, _end, context) => {
  const decoded = decodeAt(encoding, text, start);
  if (decoded.marker === undefined) return undefined;
  marker.lastIndex = decoded.marker;
  const m = marker.exec(decoded.text);
  const judged = m === null ? undefined : privateKey(decoded.text, m.index, m.index + m[0].length, context);
  return judged === undefined ? undefined : { ...judged, message: `${judged.message}, stored ${decoded.how}`, excerpt: judged.excerpt };
};

/** The cipher named in an openssh-key-v1 blob: "none" means no passphrase. */
function openSshCipher(body: string): string | undefined {
  const blob = Buffer.from(body.slice(0, 64), "base64");
  const magic = "openssh-key-v1\0";
  if (blob.toString("latin1", 0, magic.length) !== magic || blob.length < magic.length + 4) return undefined;
  const length = blob.readUInt32BE(magic.length);
  return blob.toString("latin1", magic.length + 4, magic.length + 4 + Math.min(length, 32));
}

const puttyKey: Judge = (text, start, end) => {
  const encryption = /\r?\nEncryption: (\S+)/.exec(text.slice(end, end + 300))?.[1];
  if (encryption === undefined) return undefined;
  const excerpt = `${text.slice(start, end)} … Encryption: ${printable(encryption)} (key masked)`;
  return encryption === "none"
    ? { rule: rules.privateKey, severity: rules.privateKey.severity, message: "unencrypted PuTTY private key", excerpt }
    : { rule: rules.encryptedPrivateKey, severity: rules.encryptedPrivateKey.severity, message: "passphrase-protected PuTTY private key", excerpt };
};

/**
 * A JWK's secret (RFC 7518 section 6): the private exponent or scalar "d" of an RSA, EC or OKP
 * key, or the key value "k" of a symmetric (oct) one, an HMAC or AES key as secret as any.
 */
const jwkPrivate: Judge = (text, start, end) => {
  const member = text.charAt(start + 1);
  const value = /^[A-Za-z0-9_-]*/.exec(text.slice(end, end + 1024))?.[0] ?? "";
  const around = text.slice(Math.max(0, start - 2048), end + 2048);
  const types = member === "k" ? "oct" : "RSA|EC|OKP";
  const kty = new RegExp(`"kty"\\s*:\\s*"(${types})"`).exec(around)?.[1];
  if (kty === undefined || value.length + 16 < 20) return undefined;
  const what = member === "k" ? "unencrypted JWK symmetric key" : "unencrypted JWK private key";
  return { rule: rules.privateKey, severity: rules.privateKey.severity, message: `${what} (${kty})`, excerpt: `"${member}": "${"*".repeat(8)}" (${value.length + 16} characters, masked)` };
};

/** A 40-character AWS secret access key: base64 alphabet, both cases (unlike a hex digest). */
const awsSecretShape = /(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g;
const looksRandom = (s: string): boolean => /[a-z]/.test(s) && /[A-Z]/.test(s) && /[0-9/+]/.test(s);

const awsKeyId: Judge = (text, start, end) => {
  const id = text.slice(start, end);
  if (id.endsWith("EXAMPLE")) return undefined; // AWS's documented example key
  // A key id is a token of its own (base32 after its prefix); inside a run of capitals it is
  // a word of a table, like the Unicode names in libunistring ("CAUCASIAN…").
  if (/[A-Za-z0-9]/.test(text.charAt(start - 1)) || /[A-Za-z0-9]/.test(text.charAt(end)) || !/^[A-Z2-7]+$/.test(id.slice(4))) return undefined;
  const near = text.slice(Math.max(0, start - 1024), end + 1024);
  const secret = [...near.matchAll(awsSecretShape)].find((s) => looksRandom(s[0]) && !s[0].includes(id));
  const excerpt = maskedLine(text, start, end, 4);
  return secret === undefined
    ? { rule: rules.awsKeyId, severity: rules.awsKeyId.severity, message: `AWS access key id ${maskSecret(id, 4)}`, excerpt }
    : { rule: rules.awsCredentials, severity: rules.awsCredentials.severity, message: `AWS access key id ${maskSecret(id, 4)} with a secret access key beside it`, excerpt };
};

const awsSecret: Judge = (text, start, end) => {
  const value = assignedValue(text, end);
  if (value === undefined || !/^[A-Za-z0-9/+]{40}$/.test(value.text) || value.text.endsWith("EXAMPLEKEY")) return undefined;
  // With its key id beside it, the pair is one leak, reported once by the key id's judge; AWS's
  // example id is reported by no one, so beside it (a decoy) the secret is reported here.
  const ids = text.slice(Math.max(0, start - 1024), end + 1024).matchAll(/(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z2-7]{16}(?![A-Za-z0-9])/g);
  if ([...ids].some((id) => !id[0].endsWith("EXAMPLE"))) return undefined;
  return { rule: rules.awsCredentials, severity: rules.awsCredentials.severity, message: "AWS secret access key", excerpt: maskedLine(text, value.start, value.start + value.text.length) };
};

const token = (service: string, keep: number): Judge => (text, start, end) => {
  const tail = /^[A-Za-z0-9_-]*/.exec(text.slice(end, end + 256))?.[0] ?? "";
  const value = text.slice(start, end) + tail;
  // Documentation placeholders (ghp_xxxx…) repeat a few characters; real tokens are random.
  if (new Set(value.slice(keep)).size < 10) return undefined;
  return { rule: rules.token, severity: rules.token.severity, message: `${service} token ${maskSecret(value, keep)}`, excerpt: maskedLine(text, start, start + value.length, keep) };
};

// Templating, booleans, masks, and nsswitch's sources (`passwd: files`): values, not passwords.
const placeholder = /^(?:\$|%|<|\{|\[|\*+$|x+$|\.+$|-+$|null$|none$|nil$|true$|false$|yes$|no$|changeme$|password$|secret$|(?:files|compat|systemd|sss|ldap|nis|db|winbind|extrausers)$)/i;

const assignment: Judge = (text, start, end, context) => {
  if (context !== "config" && context !== "unallocated") return undefined;
  const lineStart = text.lastIndexOf("\n", start - 1) + 1;
  if (/^\s*(?:#|;|\/\/|--|\*|!)/.test(text.slice(lineStart, start))) return undefined; // a comment
  const value = assignedValue(text, end);
  if (value === undefined || value.text.length < 4 || placeholder.test(value.text) || printable(value.text) !== value.text) return undefined;
  // After `key: ` an unquoted value followed by more words is a list or a sentence (nsswitch's
  // `passwd: files systemd`), not a password; after `=` it is a password on a command line.
  const colon = text.charAt(end - 1) === ":";
  if (colon && !value.quoted && /^[ \t]+[^\s#;]/.test(text.slice(value.start + value.text.length, value.start + value.text.length + 80).split("\n")[0] ?? "")) return undefined;
  const key = /[A-Za-z0-9_.-]*$/.exec(text.slice(Math.max(lineStart, start - 40), start))?.[0] ?? "";
  const name = `${key}${text.slice(start, end).replace(/[\s"'=:]/g, "")}`;
  const where = context === "unallocated" ? "" : " in a configuration or log file";
  return { rule: rules.secretAssignment, severity: rules.secretAssignment.severity, message: `${name} set${where}`, excerpt: maskedLine(text, value.start, value.start + value.text.length) };
};

/** The value after `key =` / `key:`: quoted, or up to the next space or separator. */
function assignedValue(text: string, end: number): { text: string; start: number; quoted: boolean } | undefined {
  const after = text.slice(end, end + 512);
  const m = /^[ \t]*(?:"([^"\n]*)"|'([^'\n]*)'|([^\s"',;)}\]]+))/.exec(after);
  if (m === null) return undefined;
  const value = m[1] ?? m[2] ?? m[3] ?? "";
  const quoted = m[3] === undefined;
  return { text: value, start: end + m[0].length - value.length - (quoted ? 1 : 0), quoted };
}

const judges: Record<NonNullable<ReturnType<typeof patternOf>>, Judge> = {
  "private-key": privateKey,
  "private-key-base64": encodedKey("base64"),
  "private-key-hex": encodedKey("hex"),
  "private-key-utf16": encodedKey("utf16"),
  "putty-key": puttyKey,
  "jwk-private": jwkPrivate,
  "aws-key-id": awsKeyId,
  "aws-secret": awsSecret,
  "github-token": token("GitHub", 4),
  "slack-token": token("Slack", 5),
  assignment,
};
