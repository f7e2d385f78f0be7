import * as jsonc from 'jsonc-parser';

/** Zero-based line and character, as LSP counts them (UTF-16 code units). */
export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export interface TextEdit {
  range: Range;
  newText: string;
}

export type JsonPath = jsonc.JSONPath;

/** A config file's text and its JSONC syntax tree, with the ranges of what is in it. */
export class ConfigDocument {
  readonly text: string;
  readonly tree: jsonc.Node | undefined;
  readonly syntaxErrors: readonly jsonc.ParseError[];
  readonly #lineStarts: number[];

  constructor(text: string) {
    this.text = text;
    const errors: jsonc.ParseError[] = [];
    this.tree = jsonc.parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
    this.syntaxErrors = errors;
    this.#lineStarts = [0];
    for (let index = text.indexOf('\n'); index >= 0; index = text.indexOf('\n', index + 1)) this.#lineStarts.push(index + 1);
  }

  /** The document's value (undefined when it is empty). */
  value(): unknown {
    return this.tree ? jsonc.getNodeValue(this.tree) : undefined;
  }

  position(offset: number): Position {
    let low = 0;
    let high = this.#lineStarts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.#lineStarts[middle]! <= offset) low = middle;
      else high = middle - 1;
    }
    return { line: low, character: offset - this.#lineStarts[low]! };
  }

  offset(position: Position): number {
    const start = this.#lineStarts[Math.min(position.line, this.#lineStarts.length - 1)] ?? 0;
    return Math.min(this.text.length, start + position.character);
  }

  range(offset: number, length: number): Range {
    return { start: this.position(offset), end: this.position(offset + length) };
  }

  /** A JSON pointer (`/toolPricing/search`, as Ajv reports them) as a path; digits index arrays only. */
  pathOf(pointer: string): JsonPath {
    const path: JsonPath = [];
    let node = this.tree;
    for (const raw of pointer.split('/').slice(1)) {
      const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      const step = node?.type === 'array' && /^\d+$/.test(part) ? Number(part) : part;
      path.push(step);
      node = node && jsonc.findNodeAtLocation(node, [step]);
    }
    return path;
  }

  /** The node at a path, or the deepest node on the way to it that exists. */
  nearest(path: JsonPath): jsonc.Node | undefined {
    if (!this.tree) return undefined;
    for (let length = path.length; length >= 0; length--) {
      const node = jsonc.findNodeAtLocation(this.tree, path.slice(0, length));
      if (node) return node;
    }
    return undefined;
  }

  /** Where the value at `path` is written (the whole document when it is empty). */
  valueRange(path: JsonPath): Range {
    const node = this.nearest(path);
    return node ? this.range(node.offset, node.length) : this.range(0, 0);
  }

  /** Where the property name of `path` is written (its value's range if it is an array item). */
  keyRange(path: JsonPath): Range {
    const node = this.nearest(path);
    const key = node?.parent?.type === 'property' ? node.parent.children?.[0] : undefined;
    return key ? this.range(key.offset, key.length) : this.valueRange(path);
  }

  /** The edits that remove the property or array item at `path`, commas included. */
  removal(path: JsonPath): TextEdit[] {
    return jsonc.modify(this.text, path, undefined, {}).map((edit) => ({ range: this.range(edit.offset, edit.length), newText: edit.content }));
  }

  /** The edit that replaces a string value at `path` (or a property name, with `key`) by `replacement`. */
  replacement(path: JsonPath, replacement: string, key = false): TextEdit {
    return { range: key ? this.keyRange(path) : this.valueRange(path), newText: JSON.stringify(replacement) };
  }
}
