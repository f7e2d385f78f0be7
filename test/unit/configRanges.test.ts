import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ConfigDocument, type JsonPath, type Place } from '../../server/src/config/document.ts';

/** Every path in a JSON value (object keys and array indexes), the root first. */
function pathsOf(value: unknown, path: JsonPath = []): JsonPath[] {
  if (value === null || typeof value !== 'object') return [path];
  const children = Array.isArray(value) ? value.map((item, index) => [index, item] as const) : Object.entries(value);
  return [path, ...children.flatMap(([step, child]) => pathsOf(child, [...path, step]))];
}

/** The name and the value of every path, and of a child that does not exist under each. */
function placesOf(value: unknown): Place[] {
  return pathsOf(value).flatMap((path) =>
    [path, [...path, 'missing'], [...path, 99]].flatMap((where): Place[] => [
      { path: where, part: 'key' },
      { path: where, part: 'value' },
    ]),
  );
}

/** The ranges as found in the plain JSON text and in the same text made JSONC by a comment after it. */
function bothWays(text: string, places: readonly Place[]): { json: unknown; jsonc: unknown } {
  return { json: new ConfigDocument(text).ranges(places), jsonc: new ConfigDocument(`${text}\n// made JSONC by this comment\n`).ranges(places) };
}

test('diagnostics point at the same ranges in plain JSON as in JSONC, whatever the layout', () => {
  const layout = fc.record({ indent: fc.constantFrom(0, 1, 2, '\t'), crlf: fc.boolean() });
  fc.assert(
    fc.property(fc.jsonValue(), layout, (value, { indent, crlf }) => {
      const json = JSON.stringify(value, null, indent);
      const text = crlf ? json.replaceAll('\n', '\r\n') : json;
      const { json: plain, jsonc } = bothWays(text, placesOf(value));
      assert.deepEqual(plain, jsonc);
    }),
    { numRuns: 300 },
  );
});

/** The one-line range of the `nth` occurrence of `needle` in `text`. */
function rangeOf(text: string, needle: string, nth = 1): { start: { line: number; character: number }; end: { line: number; character: number } } {
  let offset = -1;
  for (let index = 0; index < nth; index++) offset = text.indexOf(needle, offset + 1);
  return { start: { line: 0, character: offset }, end: { line: 0, character: offset + needle.length } };
}

test('diagnostics point at the last of duplicated names, past brackets and quotes inside strings, and at names written with escapes', () => {
  const duplicated = '{ "a": { "b": 1 }, "a": 2, "c": [ "x\\"]", { "d": "}" } ] }';
  const places: Place[] = [
    { path: ['a'], part: 'key' },
    { path: ['a'], part: 'value' },
    { path: ['c', 1, 'd'], part: 'value' },
  ];
  const { json, jsonc } = bothWays(duplicated, places);
  assert.deepEqual(json, jsonc);
  assert.deepEqual(json, [rangeOf(duplicated, '"a"', 2), rangeOf(duplicated, '2'), rangeOf(duplicated, '"}"')]);
  const escaped = '{ "t\\u0061x": { "r\\\\ate": 7 } }';
  const escapedPlaces: Place[] = [
    { path: ['tax'], part: 'key' },
    { path: ['tax', 'r\\ate'], part: 'value' },
  ];
  const named = bothWays(escaped, escapedPlaces);
  assert.deepEqual(named.json, named.jsonc);
  assert.deepEqual(named.json, [rangeOf(escaped, '"t\\u0061x"'), rangeOf(escaped, '7')]);
});
