import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ConfigDocument, type JsonPath } from '../../server/src/config/document.ts';
import { blankJsonc } from '../../server/src/config/jsonText.ts';
import { jsoncSpans, jsonSpans } from '../../server/src/config/spans.ts';

const JSONC = { allowTrailingComma: true, disallowComments: false };

/** Every path in a JSON value (object keys and array indexes), the root first. */
function pathsOf(value: unknown, path: JsonPath = []): JsonPath[] {
  if (value === null || typeof value !== 'object') return [path];
  const children = Array.isArray(value) ? value.map((item, index) => [index, item] as const) : Object.entries(value);
  return [path, ...children.flatMap(([step, child]) => pathsOf(child, [...path, step]))];
}

/** Every path in the value, and a child that does not exist under each. */
function targetsOf(value: unknown): JsonPath[] {
  return pathsOf(value).flatMap((path) => [path, [...path, 'missing'], [...path, 99]]);
}

/** The spans found by brackets and quotes (after blanking JSONC) must be the ones jsonc-parser finds. */
function assertSameSpans(text: string, targets: readonly JsonPath[]): void {
  assert.deepEqual(jsonSpans(blankJsonc(text), targets), jsoncSpans(text, targets, JSONC));
}

/** `value` as JSONC, with comments between tokens and trailing commas where `noise` says. */
function asJsonc(value: unknown, noise: () => number): string {
  const gap = () => ['', ' ', '\n', ' /* c */ ', ' // c\n', '/* "}" , ] */', '//,}\r\n', '\t'][noise() % 8]!;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const items = Array.isArray(value)
    ? value.map((item) => `${gap()}${asJsonc(item, noise)}${gap()}`)
    : Object.entries(value).map(([name, item]) => `${gap()}${JSON.stringify(name)}${gap()}:${gap()}${asJsonc(item, noise)}${gap()}`);
  const trailing = items.length > 0 && noise() % 2 === 0 ? `,${gap()}` : '';
  return Array.isArray(value) ? `[${items.join(',')}${trailing}]` : `{${items.join(',')}${trailing}}`;
}

test('diagnostics in plain JSON point where jsonc-parser would have them, whatever the layout', () => {
  const layout = fc.record({ indent: fc.constantFrom(0, 1, 2, '\t'), crlf: fc.boolean() });
  fc.assert(
    fc.property(fc.jsonValue(), layout, (value, { indent, crlf }) => {
      const json = JSON.stringify(value, null, indent);
      assertSameSpans(crlf ? json.replaceAll('\n', '\r\n') : json, targetsOf(value));
    }),
    { numRuns: 300 },
  );
});

test('JSONC (comments, trailing commas) reads as its JSON value, with diagnostics where jsonc-parser would have them', () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.array(fc.nat(), { minLength: 1 }), (value, choices) => {
      let next = 0;
      const text = asJsonc(value, () => choices[next++ % choices.length]!);
      const document = new ConfigDocument(text);
      assert.deepEqual(document.syntaxErrors, []);
      assert.deepEqual(document.value(), JSON.parse(JSON.stringify(value)));
      assert.equal(blankJsonc(text).length, text.length);
      assertSameSpans(text, targetsOf(value));
    }),
    { numRuns: 300 },
  );
});

test('JSONC that is not valid is still reported, not read as blanked JSON', () => {
  for (const text of ['{,}', '[,1]', '{ "a": 1,, }', '[1 /* never closed ]', '{ "a": "never closed }', '{ "a": 1 // no line break, no brace']) {
    assert.notDeepEqual(new ConfigDocument(text).syntaxErrors, [], text);
  }
  for (const text of ['{ "a": 1 } // a comment at the very end', '{ "a": [1,] ,}', '/* only */ [ /* comments */ ]']) {
    assert.deepEqual(new ConfigDocument(text).syntaxErrors, [], text);
  }
});

test('diagnostics point at the last of duplicated names, past brackets and quotes inside strings, and at names written with escapes', () => {
  const duplicated = '{ "a": { "b": 1 }, "a": 2, "c": [ "x\\"]", { "d": "}" } ] }';
  assertSameSpans(duplicated, [['a', 'b'], ['c', 1, 'd']]);
  const [name, value, inArray] = new ConfigDocument(duplicated).ranges([
    { path: ['a'], part: 'key' },
    { path: ['a'], part: 'value' },
    { path: ['c', 1, 'd'], part: 'value' },
  ]);
  const at = (needle: string, nth = 1) => {
    let offset = -1;
    for (let index = 0; index < nth; index++) offset = duplicated.indexOf(needle, offset + 1);
    return { start: { line: 0, character: offset }, end: { line: 0, character: offset + needle.length } };
  };
  assert.deepEqual([name, value, inArray], [at('"a"', 2), at('2'), at('"}"')]);

  const escaped = '{ "t\\u0061x": { "r\\\\ate": 7 } }';
  assertSameSpans(escaped, [['tax', 'r\\ate']]);
  const [key, rate] = new ConfigDocument(escaped).ranges([
    { path: ['tax'], part: 'key' },
    { path: ['tax', 'r\\ate'], part: 'value' },
  ]);
  assert.deepEqual(key, { start: { line: 0, character: 2 }, end: { line: 0, character: 12 } });
  assert.deepEqual(rate, { start: { line: 0, character: escaped.indexOf('7') }, end: { line: 0, character: escaped.indexOf('7') + 1 } });
});
