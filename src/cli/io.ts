import { Redactor } from "../report/redact.js";

/** Where the CLI writes; tests capture it. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** What every command gets: output that passes through the invocation's one redactor. */
export interface CliContext {
  io: CliIo;
  /**
   * Writes a JSON or SARIF document whose every string its renderer already passed through the
   * redactor: redacting the text again would cut through its quotes and break the document.
   */
  document(text: string): void;
  /** Knows this invocation's secrets (sensitive variables) once a template is loaded. */
  redactor: Redactor;
  /** kiln's own message about a template's structure: registered secrets are still removed. */
  structuralErr(line: string): void;
  /**
   * A JSON document of kiln's own (inspect, plan): every string in it loses registered secrets
   * and credential shapes, but a key that sounds secret ("token": …) does not break the document.
   */
  json(value: unknown): void;
}

export function cliContext(io: CliIo): CliContext {
  const redactor = new Redactor();
  return {
    redactor,
    document: (text) => io.out(text),
    structuralErr: (line) => io.err(redactor.redactKnown(line)),
    json: (value) => io.out(JSON.stringify(value, (_key, v: unknown) => (typeof v === "string" ? redactor.redactKnown(v) : v), 2)),
    io: { out: (line) => io.out(redactor.redact(line)), err: (line) => io.err(redactor.redact(line)) },
  };
}
