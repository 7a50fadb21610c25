/**
 * The one function every string leaving kiln passes through. It removes private key blocks,
 * well-known credential shapes, `password=`-style assignments, and any value registered as
 * secret (sensitive variables, credentials the build was given).
 */
const secretShapes: readonly RegExp[] = [
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)/g,
  /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g,
  /\bgh[pousr]_[A-Za-z0-9]{36,}\b/g,
  /\bxox[abprs]-[A-Za-z0-9-]{10,}/g,
];
// The key may carry a prefix (DB_PASSWORD, client_secret) and a closing quote (JSON's "password":);
// a value that opens an object or a list, or is true/false/null, is structure (a schema's
// "get_password": false), not a secret.
const secretAssignment = /\b([A-Za-z0-9_]*(?:aws_secret_access_key|aws_session_token|password|passwd|secret|token))(["']?[ \t]*[=:][ \t]*)("[^"\n]*"|'[^'\n]*'|(?!(?:true|false|null)\b)[^\s"'{[]\S*)/gi;

export class Redactor {
  private readonly secrets = new Set<string>();

  /** Values shorter than 4 characters would blank out ordinary words, so they are not registered. */
  addSecret(value: string): void {
    if (value.length >= 4) this.secrets.add(value);
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
