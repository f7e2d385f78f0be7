import * as jsonc from 'jsonc-parser';
import type { JsonLayout, Members } from './jsonLayout.ts';
import { CLOSE_BRACE, CLOSE_BRACKET, COMMA, OPEN_BRACE, OPEN_BRACKET, skipSpace as skipJsonSpace, stringEnd, valueEnd as jsonValueEnd } from './jsonText.ts';

/** Where something is written: offset and length in the text (UTF-16 code units). */
export interface Span {
  offset: number;
  length: number;
}

/** Where property names and values are written, by path (as `spanKey` spells it). */
export interface Spans {
  keys: Map<string, Span>;
  values: Map<string, Span>;
}

/** A path as the key of `Spans`. */
export function spanKey(path: jsonc.JSONPath): string {
  return JSON.stringify(path);
}

/**
 * Property-name and value spans of the targets and every enclosing path, in JSONC (comments,
 * trailing commas, errors). jsonc-parser tokenizes the whole text, however little is wanted.
 */
export function jsoncSpans(text: string, targets: readonly jsonc.JSONPath[], options: jsonc.ParseOptions): Spans {
  const wanted = new Set<string>();
  for (const target of targets) for (let length = 0; length <= target.length; length++) wanted.add(spanKey(target.slice(0, length)));
  const keys = new Map<string, Span>();
  const values = new Map<string, Span>();
  const open: { key: string | undefined; offset: number }[] = [];
  const begin = (offset: number, pathSupplier: () => jsonc.JSONPath) => {
    const key = spanKey(pathSupplier());
    const inside = wanted.has(key);
    open.push({ key: inside ? key : undefined, offset });
    return inside;
  };
  const end = (offset: number, length: number) => {
    const container = open.pop();
    if (container?.key !== undefined) values.set(container.key, { offset: container.offset, length: offset + length - container.offset });
  };
  jsonc.visit(
    text,
    {
      onObjectBegin: (offset, _length, _line, _character, pathSupplier) => begin(offset, pathSupplier),
      onObjectEnd: end,
      onArrayBegin: (offset, _length, _line, _character, pathSupplier) => begin(offset, pathSupplier),
      onArrayEnd: end,
      onObjectProperty: (property, offset, length, _line, _character, pathSupplier) => {
        const key = spanKey([...pathSupplier(), property]);
        if (wanted.has(key)) keys.set(key, { offset, length });
      },
      onLiteralValue: (_value, offset, length, _line, _character, pathSupplier) => {
        const key = spanKey(pathSupplier());
        if (wanted.has(key)) values.set(key, { offset, length });
      },
    },
    options,
  );
  return { keys, values };
}

/** The wanted paths as a tree: a node per path, its children by property name or array index. */
interface Wanted {
  key: string;
  children: Map<string | number, Wanted>;
}

function wantedTree(targets: readonly jsonc.JSONPath[]): Wanted {
  const root: Wanted = { key: spanKey([]), children: new Map() };
  for (const target of targets) {
    let node = root;
    target.forEach((step, index) => {
      let child = node.children.get(step);
      if (!child) node.children.set(step, (child = { key: spanKey(target.slice(0, index + 1)), children: new Map() }));
      node = child;
    });
  }
  return root;
}

/**
 * The same spans as `jsoncSpans`, for text that `JSON.parse` accepted: it descends only into the
 * wanted paths and skips every other value by its brackets and quotes, which on a config of
 * thousands of tools is several times faster than tokenizing it. The text must be valid JSON (JSONC
 * made JSON by `blankJsonc` finds the same spans). Given the text's layout, it goes straight to the
 * values of the first two levels.
 */
export function jsonSpans(text: string, targets: readonly jsonc.JSONPath[], layout?: JsonLayout): Spans {
  const keys = new Map<string, Span>();
  const values = new Map<string, Span>();

  // Given text that is not JSON, it stops at the end rather than loop (the caller falls back).
  const notJson = (): never => {
    throw new Error('jsonSpans: the text is not JSON');
  };
  const skipSpace = (at: number): number => skipJsonSpace(text, at);
  const endOfString = (at: number): number => {
    const end = stringEnd(text, at);
    return end < 0 ? notJson() : end;
  };
  const valueEnd = (at: number): number => {
    const end = jsonValueEnd(text, at);
    return end < 0 ? notJson() : end;
  };
  /** Records the value at `at` (and what is wanted inside it); the index after it. */
  const walk = (at: number, wanted: Wanted): number => {
    const first = text.charCodeAt(at);
    let end: number;
    if (wanted.children.size === 0 || (first !== OPEN_BRACE && first !== OPEN_BRACKET)) {
      end = valueEnd(at);
    } else {
      const isObject = first === OPEN_BRACE;
      let index = skipSpace(at + 1);
      for (let item = 0; text.charCodeAt(index) !== (isObject ? CLOSE_BRACE : CLOSE_BRACKET); item++) {
        if (index >= text.length) notJson();
        let child: Wanted | undefined;
        if (isObject) {
          const nameEnd = endOfString(index);
          const raw = text.slice(index + 1, nameEnd - 1);
          child = wanted.children.get(raw.includes('\\') ? (JSON.parse(text.slice(index, nameEnd)) as string) : raw);
          if (child) keys.set(child.key, { offset: index, length: nameEnd - index });
          index = skipSpace(skipSpace(nameEnd) + 1);
        } else {
          child = wanted.children.get(item);
        }
        index = skipSpace(child ? walk(index, child) : valueEnd(index));
        if (text.charCodeAt(index) === COMMA) index = skipSpace(index + 1);
      }
      end = index + 1;
    }
    values.set(wanted.key, { offset: at, length: end - at });
    return end;
  };

  /** Records the wanted key and value spans among `members`, where the layout says they are written; walks deeper from there. */
  const fromLayout = (members: Members, wanted: Wanted, nested: (index: number) => Members | undefined) => {
    for (const [name, child] of wanted.children) {
      const index = members.names.lastIndexOf(name);
      if (index < 0) continue;
      const keyStart = members.keyStarts[index]!;
      if (keyStart >= 0) keys.set(child.key, { offset: keyStart, length: endOfString(keyStart) - keyStart });
      const inner = nested(index);
      if (child.children.size > 0 && inner) {
        values.set(child.key, { offset: members.starts[index]!, length: members.ends[index]! - members.starts[index]! });
        fromLayout(inner, child, () => undefined);
      } else {
        walk(members.starts[index]!, child);
      }
    }
  };

  const tree = wantedTree(targets);
  if (layout) {
    values.set(tree.key, { offset: layout.rootStart, length: layout.rootEnd - layout.rootStart });
    fromLayout(layout.top, tree, (index) => layout.nested[index]);
  } else {
    walk(skipSpace(0), tree);
  }
  return { keys, values };
}
