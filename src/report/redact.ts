import { secretVariants } from "./secret-variants.js";

/**
 * The one function every string leaving kiln passes through. It removes private key blocks,
 * well-known credential shapes, `password=`-style assignments, and any value registered as
 * secret (sensitive variables, credentials the build was given) in the forms tools print it.
 */
const keyBegin = "-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----";
const keyEnd = "-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----";
const secretShapes: readonly RegExp[] = [
  new RegExp(`${keyBegin}[\\s\\S]*?(?:${keyEnd}|$)`, "g"),
  // The end of a key whose start was cut off (the last lines of a failing command's stderr).
  new RegExp(`(?:^[ \\t]*[A-Za-z0-9+/=]+[ \\t]*\\r?\\n)*[ \\t]*${keyEnd}`, "gm"),
  /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g,
  /\bgh[pousr]_[A-Za-z0-9]{36,}\b/g,
  /\bxox[abprs]-[A-Za-z0-9-]{10,}/g,
];
// The key may carry a prefix (DB_PASSWORD, client_secret) and a closing quote (JSON's "password":);
// a value that opens an object or a list, or is true/false/null, is structure (a schema's
// "get_password": false), not a secret.
const secretAssignment = /\b([A-Za-z0-9_]*(?:aws_secret_access_key|aws_session_token|password|passwd|secret|token))(["']?[ \t]*[=:][ \t]*)("[^"\n]*"|'[^'\n]*'|(?!(?:true|false|null)\b)[^\s"'{[]\S*)/gi;

/** A line inside a PEM or PGP block: base64, a blank line, or a header (Proc-Type: 4,ENCRYPTED). */
const keyBlockLine = /^\s*(?:[A-Za-z0-9+/=]*|(?:Proc-Type|DEK-Info|Version|Comment|Charset|Hash): .*)\s*$/;
const opensKeyBlock = new RegExp(`${keyBegin}(?![\\s\\S]*${keyEnd})`);
const closesKeyBlock = new RegExp(keyEnd);

export class Redactor {
  /** Longest first, so that a secret is masked whole before a part of it (one of its lines) is. */
  private secrets: string[] = [];
  /** Output streams (by source) whose last line opened a private key block that has not ended. */
  private readonly inKeyBlock = new Set<string>();

  /** Values shorter than 4 characters would blank out ordinary words, so they are not registered. */
  addSecret(value: string): void {
    if (value.length < 4) return;
    this.secrets = [...new Set([...this.secrets, ...secretVariants(value)])].sort((a, b) => b.length - a.length);
  }

  /**
   * One line of what a command prints, in order. Output arrives a line at a time, so a private key
   * printed whole spans many calls: the stream remembers an open BEGIN marker and masks the lines
   * after it up to the END marker, or up to a line that cannot be part of a key (the command
   * stopped printing it).
   */
  redactLine(stream: string, line: string): string {
    if (this.inKeyBlock.has(stream)) {
      const end = closesKeyBlock.exec(line);
      if (end !== null) {
        this.inKeyBlock.delete(stream);
        return `[redacted]${this.redactLine(stream, line.slice(end.index + end[0].length))}`;
      }
      if (keyBlockLine.test(line)) return line.trim() === "" ? line : "[redacted]";
      this.inKeyBlock.delete(stream);
    }
    if (opensKeyBlock.test(line)) this.inKeyBlock.add(stream);
    return this.redact(line);
  }

  /**
   * Registered secrets and credential shapes only: for kiln's own messages about a template
   * ("variables.api_token: is required"), where the assignment rule would hide the message.
   */
  redactKnown(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join("[redacted]");
    for (const shape of secretShapes) out = out.replace(shape, "[redacted]");
    return out;
  }

  redact(text: string): string {
    return this.redactKnown(text).replace(secretAssignment, (_all, key: string, sep: string) => `${key}${sep}[redacted]`);
  }
}
