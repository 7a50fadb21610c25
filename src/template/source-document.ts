import { readUserFile } from "../system/read-user-file.js";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node, type Pair } from "yaml";
import { ConfigError, type ConfigProblem } from "../errors.js";

export type TemplatePath = readonly (string | number)[];

/**
 * A template file parsed with positions kept, so that any problem found later (a schema
 * violation, an unknown variable) can name its line and column.
 */
export class SourceDocument {
  private constructor(
    readonly file: string,
    /** The file as written, before any expression was evaluated. */
    readonly text: string,
    readonly document: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  /** Parses YAML or JSON (JSON is read by the same YAML 1.2 parser, with positions). */
  static parse(file: string, text: string): SourceDocument {
    const lines = new LineCounter();
    let document: Document.Parsed;
    try {
      document = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    } catch (error) {
      // Nesting thousands of levels deep exhausts the parser's stack: no template needs it.
      if (!(error instanceof RangeError)) throw error;
      throw new ConfigError([{ file, line: 1, column: 1, path: "", message: "nests too deeply to be read (thousands of levels)", hint: "a template is a few levels deep: fix the YAML/JSON" }]);
    }
    const source = new SourceDocument(file, text, document, lines);
    // Nesting thousands of levels deep exhausts the parser, and every error after it is noise.
    const exhausted = document.errors.find((e) => e.code === "RESOURCE_EXHAUSTION");
    const problems = exhausted !== undefined
      ? [source.problemAtOffset(exhausted.pos[0], "", "nests too deeply to be read (thousands of levels)", "a template is a few levels deep: fix the YAML/JSON")]
      : document.errors.map((e) => source.problemAtOffset(e.pos[0], "", firstLine(e.message), "fix the YAML/JSON syntax"));
    if (problems.length > 0) throw new ConfigError(problems);
    if (!isMap(document.contents)) {
      throw new ConfigError([source.problemAtOffset(0, "", "a template must be a mapping of keys (name, builders, provisioners, …)")]);
    }
    source.refuseAliasBombs();
    return source;
  }

  /**
   * YAML aliases are expanded wherever the template is read as data: a few that refer to each
   * other ("billion laughs") expand to gigabytes. The parser counts as it expands; past its limit
   * the template is refused at its first alias, as one problem, before anything reads it.
   */
  private refuseAliasBombs(): void {
    try {
      this.document.toJS({ maxAliasCount: 100 });
    } catch (error) {
      if (error instanceof RangeError) throw new ConfigError([this.problemAtOffset(0, "", "nests too deeply to be read (thousands of levels)", "a template is a few levels deep: fix the YAML/JSON")]);
      if (!(error instanceof ReferenceError)) throw error;
      let first = 0;
      visit(this.document, { Alias: (_key, node) => { first = node.range?.[0] ?? 0; return visit.BREAK; } });
      throw new ConfigError([this.problemAtOffset(first, "", "YAML aliases here expand to far more than a template holds (an alias bomb?)", "write the values out, or use fewer aliases of aliases")]);
    }
  }

  static async read(file: string): Promise<SourceDocument> {
    const text = await readUserFile(file, { code: "KILN_TEMPLATE_UNREADABLE", kind: "template", hint: "pass the path of a .yaml or .json template" });
    return SourceDocument.parse(file, text);
  }

  /** A problem located at the deepest node of `path` that exists in the file. */
  problemAt(path: TemplatePath, message: string, hint?: string): ConfigProblem {
    return this.problemAtOffset(this.offsetOf(path), path.join("."), message, hint);
  }

  /** A problem located at the key itself (for unknown keys). */
  problemAtKey(path: TemplatePath, key: string, message: string, hint?: string): ConfigProblem {
    const parent = this.nodeAt(path);
    const pair = isMap(parent) ? (parent.items as Pair[]).find((p) => isScalar(p.key) && p.key.value === key) : undefined;
    const offset = pair !== undefined && isScalar(pair.key) && pair.key.range ? pair.key.range[0] : this.offsetOf(path);
    return this.problemAtOffset(offset, [...path, key].join("."), message, hint);
  }

  private problemAtOffset(offset: number, path: string, message: string, hint?: string): ConfigProblem {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col, path, message, ...(hint === undefined ? {} : { hint }) };
  }

  private nodeAt(path: TemplatePath): Node | undefined {
    let node: unknown = this.document.contents;
    for (const segment of path) {
      if (isMap(node)) node = node.get(segment, true);
      else if (isSeq(node) && typeof segment === "number") node = node.get(segment, true);
      else return undefined;
    }
    return node as Node | undefined;
  }

  private offsetOf(path: TemplatePath): number {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = this.nodeAt(path.slice(0, depth));
      if (node?.range) return node.range[0];
    }
    return 0;
  }
}

function firstLine(text: string): string {
  return (text.split("\n")[0] ?? text).replace(/ at line \d+, column \d+:?$/, "");
}
