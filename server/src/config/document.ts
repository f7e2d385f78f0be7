import * as jsonc from 'jsonc-parser';
import { difference, JsonLayout, reparsed, type TextChange } from './jsonLayout.ts';
import { blankJsonc } from './jsonText.ts';
import { jsoncSpans, jsonSpans, spanKey, type Spans } from './spans.ts';

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

/** A JSONC syntax error: what, and where (offset and length in the text). */
export interface SyntaxProblem {
  message: string;
  offset: number;
  length: number;
}

function syntaxMessage(code: jsonc.ParseErrorCode): string {
  return `JSON syntax: ${jsonc.printParseErrorCode(code).replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()}`;
}

/** Which part of a property a diagnostic points at: its name, or its value. */
export interface Place {
  path: JsonPath;
  part: 'key' | 'value';
}

const PARSE_OPTIONS: jsonc.ParseOptions = { allowTrailingComma: true, disallowComments: false };

/** The text and value of JSONC text as plain JSON of the same layout; undefined when it is not valid JSONC. */
function asJson(text: string): { text: string; value: unknown } | undefined {
  try {
    return { text, value: JSON.parse(text) };
  } catch {
    const blanked = blankJsonc(text);
    if (blanked === text) return undefined;
    try {
      return { text: blanked, value: JSON.parse(blanked) };
    } catch {
      return undefined;
    }
  }
}

/**
 * A config file's text. Its value comes from the native JSON parser, with comments and trailing
 * commas blanked out first if there are any (jsonc-parser only for errors); positions are found
 * afterwards, for the few places diagnostics point at, in one scan that skips everything else by
 * brackets and quotes alone. A 5,000-tool config is checked in a few milliseconds that way.
 */
export class ConfigDocument {
  readonly text: string;
  #value: unknown;
  /** The text as plain JSON (comments and trailing commas blanked), when it is valid JSONC. */
  #json: string | undefined;
  #syntaxErrors: SyntaxProblem[];
  #lineStarts: Int32Array | undefined;
  /** Where the JSON's first two levels are written, once asked for (null: the root is no object or array). */
  #layout: JsonLayout | null | undefined;
  /** Its value and layout went to the document of an edit (`edited`). */
  #handedOn = false;

  /** `parsed` is for `edited`: the value, JSON and layout of `text` it worked out. */
  constructor(text: string, parsed?: { value: unknown; json: string; layout: JsonLayout }) {
    this.text = text;
    this.#syntaxErrors = [];
    if (parsed) {
      this.#value = parsed.value;
      this.#json = parsed.json;
      this.#layout = parsed.layout;
      return;
    }
    const json = asJson(text);
    if (json) {
      this.#json = json.text;
      this.#value = json.value;
    } else {
      try {
        const errors: jsonc.ParseError[] = [];
        this.#value = jsonc.parse(text, errors, PARSE_OPTIONS);
        this.#syntaxErrors = errors.map((error) => ({ message: syntaxMessage(error.error), offset: error.offset, length: Math.max(1, error.length) }));
      } catch {
        // jsonc-parser recurses: thousands of nested brackets exhaust the stack.
        this.#value = undefined;
        this.#syntaxErrors = [{ message: 'JSON syntax: the document nests too deeply to be a config', offset: 0, length: 1 }];
      }
    }
  }

  /**
   * The document of `text`, an edit of this one's (an editor sends the whole text at each keystroke).
   * When the edit is inside one value near the top (a tool's price, the port), only that value is
   * parsed again and put in place in this document's value, which then belongs to the new document:
   * this one's value must not be read afterwards. Anything else is parsed from scratch; either way the result
   * is the same as `new ConfigDocument(text)`.
   */
  edited(text: string): ConfigDocument {
    const layout = this.#handedOn || this.#json === undefined ? undefined : this.#layoutOfJson();
    this.#handedOn = true;
    if (!layout) return new ConfigDocument(text);
    const change = difference(this.text, text);
    const next = reparsed(layout, this.#value, this.#json!, this.text, text, change);
    if (!next) return new ConfigDocument(text);
    this.#layout = undefined;
    const document = new ConfigDocument(text, { ...next, layout });
    document.#lineStarts = this.#lineStartsAfter(text, change);
    return document;
  }

  /** The line starts of `after`, moved along from this text's when the change adds and removes no line break. */
  #lineStartsAfter(after: string, { from, to, delta }: TextChange): Int32Array | undefined {
    const starts = this.#lineStarts;
    if (!starts || this.text.slice(from, to).includes('\n') || after.slice(from, to + delta).includes('\n')) return undefined;
    this.#lineStarts = undefined;
    for (let line = starts.length - 1; line > 0 && starts[line]! > from; line--) starts[line]! += delta;
    return starts;
  }

  #layoutOfJson(): JsonLayout | undefined {
    if (this.#layout === undefined) this.#layout = (this.#json !== undefined && JsonLayout.of(this.#json)) || null;
    return this.#layout ?? undefined;
  }

  /** The document's value (undefined when it is empty). */
  value(): unknown {
    return this.#value;
  }

  get syntaxErrors(): readonly SyntaxProblem[] {
    return this.#syntaxErrors;
  }

  position(offset: number): Position {
    this.#lineStarts ??= this.#computeLineStarts();
    const starts = this.#lineStarts;
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (starts[middle]! <= offset) low = middle;
      else high = middle - 1;
    }
    return { line: low, character: offset - starts[low]! };
  }

  offset(position: Position): number {
    this.#lineStarts ??= this.#computeLineStarts();
    const start = this.#lineStarts[Math.min(position.line, this.#lineStarts.length - 1)] ?? 0;
    return Math.min(this.text.length, start + position.character);
  }

  range(offset: number, length: number): Range {
    return { start: this.position(offset), end: this.position(offset + length) };
  }

  /** A JSON pointer (`/toolPricing/search`, as Ajv reports them) as a path; digits index arrays only. */
  pathOf(pointer: string): JsonPath {
    const path: JsonPath = [];
    let node = this.#value;
    for (const raw of pointer.split('/').slice(1)) {
      const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      const step = Array.isArray(node) && /^\d+$/.test(part) ? Number(part) : part;
      path.push(step);
      node = node !== null && typeof node === 'object' ? (node as Record<string | number, unknown>)[step] : undefined;
    }
    return path;
  }

  /**
   * The ranges of several places, found in one scan. A place that does not exist points at the
   * nearest enclosing value that does (the whole document at worst).
   */
  ranges(places: readonly Place[]): Range[] {
    if (places.length === 0) return [];
    const targets = places.map((place) => place.path);
    let spans: Spans;
    try {
      spans = this.#json === undefined ? jsoncSpans(this.text, targets, PARSE_OPTIONS) : jsonSpans(this.#json, targets, this.#layoutOfJson());
    } catch {
      spans = { keys: new Map(), values: new Map() };
    }
    return places.map(({ path, part }) => {
      if (part === 'key') {
        const key = spans.keys.get(spanKey(path));
        if (key) return this.range(key.offset, key.length);
      }
      for (let length = path.length; length >= 0; length--) {
        const value = spans.values.get(spanKey(path.slice(0, length)));
        if (value) return this.range(value.offset, value.length);
      }
      return this.range(0, 0);
    });
  }

  /** The edits that remove the property or array item at `path`, commas included. */
  removal(path: JsonPath): TextEdit[] {
    return jsonc.modify(this.text, path, undefined, {}).map((edit) => ({ range: this.range(edit.offset, edit.length), newText: edit.content }));
  }

  /** Counted first, then filled: a typed array lives outside the young generation a check fills. */
  #computeLineStarts(): Int32Array {
    let lines = 1;
    for (let index = this.text.indexOf('\n'); index >= 0; index = this.text.indexOf('\n', index + 1)) lines++;
    const starts = new Int32Array(lines);
    for (let line = 1, index = this.text.indexOf('\n'); index >= 0; index = this.text.indexOf('\n', index + 1)) starts[line++] = index + 1;
    return starts;
  }
}
