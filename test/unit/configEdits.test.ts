import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { checkDocument } from '../../server/src/config/check.ts';
import { ConfigDocument, type JsonPath, type Place } from '../../server/src/config/document.ts';

/** Every path in a JSON value (object keys and array indexes), the root first. */
function pathsOf(value: unknown, path: JsonPath = []): JsonPath[] {
  if (value === null || typeof value !== 'object') return [path];
  const children = Array.isArray(value) ? value.map((item, index) => [index, item] as const) : Object.entries(value);
  return [path, ...children.flatMap(([step, child]) => pathsOf(child, [...path, step]))];
}

const FACTS = { tools: new Set(['search', 'fetch', 'tool_1', 'tool_2']) };

/** An edited document must be in every way the document of its text read from scratch. */
function assertSameAsFresh(edited: ConfigDocument, text: string): void {
  const fresh = new ConfigDocument(text);
  assert.deepEqual(edited.syntaxErrors, fresh.syntaxErrors);
  assert.deepEqual(edited.value(), fresh.value());
  // deepEqual ignores the order of properties; the order is what `Object.keys` and the rules see.
  assert.equal(JSON.stringify(edited.value()), JSON.stringify(fresh.value()));
  const places: Place[] = pathsOf(fresh.value()).flatMap((path) => [
    { path, part: 'key' as const },
    { path, part: 'value' as const },
    { path: [...path, 'missing'], part: 'value' as const },
  ]);
  assert.deepEqual(edited.ranges(places), fresh.ranges(places));
  assert.deepEqual(checkDocument(edited, FACTS).diagnostics, checkDocument(fresh, FACTS).diagnostics);
}

const toolEntry = fc.record({ creditsPerCall: fc.integer({ min: -1, max: 9 }), rateLimitPerMin: fc.integer({ min: 0, max: 120 }) }, { requiredKeys: [] });
const config = fc.record(
  {
    serverCommand: fc.constant('node'),
    toolPricing: fc.dictionary(fc.constantFrom('search', 'fetch', 'serch', 'tool_1', 'tool_2', 'tool_3', '0', '__proto__'), toolEntry),
    globalRateLimitPerMin: fc.integer({ min: 0, max: 100 }),
    servers: fc.array(fc.record({ name: fc.string(), prefix: fc.constantFrom('a', 'b', 'a:b') })),
    port: fc.oneof(fc.integer({ min: 0, max: 70000 }), fc.string()),
    extra: fc.jsonValue({ maxDepth: 3 }),
  },
  { requiredKeys: ['toolPricing'] },
);

/** What an editor may put in place of a piece of the text: values, half values, names, comments. */
const FRAGMENTS = ['', '0', '7', '-', '300', '"', '"x"', ',', ':', '{', '}', '[', ']', ' ', '\n', 'null', 'true', '{"creditsPerCall": 2}', '"search": {}', '"tool_1": {"rateLimitPerMin": 500}', '/* c */', '// c\n', '\\', '"__proto__": 1'];

/** An edit: a piece of the text (anywhere, or exactly one value) replaced by a fragment or a JSON value. */
const edit = fc.record({
  where: fc.oneof(
    { arbitrary: fc.record({ anywhere: fc.nat(), length: fc.nat({ max: 12 }) }), weight: 1 },
    { arbitrary: fc.record({ value: fc.nat() }), weight: 2 },
    { arbitrary: fc.record({ number: fc.nat() }), weight: 2 },
  ),
  what: fc.oneof(fc.constantFrom(...FRAGMENTS), fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)), fc.constantFrom(...FRAGMENTS).map((fragment) => ` ${fragment} `)),
});

type Where = { anywhere: number; length: number } | { value: number } | { number: number };

/** The text with a piece replaced: anywhere, the value at a path, or a number written after a name (duplicates included). */
function applied(text: string, { where, what }: { where: Where; what: string }): string {
  const fresh = new ConfigDocument(text);
  let [start, end] = [0, 0];
  if ('anywhere' in where) {
    start = where.anywhere % (text.length + 1);
    end = Math.min(text.length, start + where.length);
  } else if ('value' in where && fresh.syntaxErrors.length === 0) {
    const paths = pathsOf(fresh.value());
    const [range] = fresh.ranges([{ path: paths[where.value % paths.length]!, part: 'value' }]);
    [start, end] = [fresh.offset(range!.start), fresh.offset(range!.end)];
  } else if ('number' in where) {
    const numbers = [...text.matchAll(/(?<=:\s*)-?\d+/g)];
    const number = numbers[where.number % Math.max(1, numbers.length)];
    if (number) [start, end] = [number.index, number.index + number[0].length];
  }
  return `${text.slice(0, start)}${what}${text.slice(end)}`;
}

test('a document edited any way reads, locates and checks exactly as the same text read from scratch', () => {
  fc.assert(
    fc.property(config, fc.constantFrom(0, 2, '\t'), fc.constantFrom('none', 'top', 'inner'), fc.array(edit, { minLength: 1, maxLength: 12 }), (value, indent, twice, edits) => {
      // Names given twice: JSON.parse keeps the later value (in the place of the first).
      const json = JSON.stringify(value, null, indent);
      let text = json;
      if (twice === 'top') text = json.replace('{', '{"servers": [{"name": "x", "prefix": "a"}], "toolPricing": {"search": {"creditsPerCall": 0}}, "port": 1,');
      if (twice === 'inner') text = json.replace(/"toolPricing": ?\{/, (opening) => `${opening}"search": {"creditsPerCall": 0}, "fetch": 7,`);
      let document = new ConfigDocument(text);
      for (const change of edits) {
        text = applied(text, change);
        document = document.edited(text);
        assertSameAsFresh(document, text);
      }
    }),
    { numRuns: 400 },
  );
});

const TOOLS = JSON.stringify({ serverCommand: 'node', toolPricing: { search: { creditsPerCall: 2 }, fetch: { creditsPerCall: 3 } }, port: 0 }, null, 2);

test('an edit inside one tool\'s price parses that tool alone: the other tools stay the objects they were', () => {
  const before = new ConfigDocument(TOOLS);
  const fetch = (before.value() as { toolPricing: { fetch: object } }).toolPricing.fetch;
  const text = TOOLS.replace('"creditsPerCall": 2', '"creditsPerCall": 20');
  const after = before.edited(text);
  const pricing = (after.value() as { toolPricing: { search: object; fetch: object } }).toolPricing;
  assert.equal(pricing.fetch, fetch);
  assert.deepEqual(pricing.search, { creditsPerCall: 20 });
  assertSameAsFresh(after, text);
});

test('edits the reuse cannot vouch for are read from scratch: a name given twice, two tools at once, comments, broken JSON', () => {
  const twice = `{"toolPricing": {"search": {"creditsPerCall": 1}, "search": {"creditsPerCall": 2}}}`;
  const cases: [string, string][] = [
    [twice, twice.replace('"creditsPerCall": 1', '"creditsPerCall": 5')],
    [twice, twice.replace('"creditsPerCall": 2', '"creditsPerCall": 5')],
    [TOOLS, TOOLS.replace('2 },\n    "fetch": { "creditsPerCall": 3', '4 },\n    "fetch": { "creditsPerCall": 6')],
    [TOOLS, TOOLS.replace('"creditsPerCall": 3', '"creditsPerCall": 3 /* three */')],
    [`// prices\n${TOOLS}`, `// prices\n${TOOLS.replace('"creditsPerCall": 3', '"creditsPerCall": 30')}`],
    [TOOLS, TOOLS.replace('"creditsPerCall": 3', '"creditsPerCall": 3,')],
    [`{"toolPricing": {"__proto__": {"creditsPerCall": 1}}}`, `{"toolPricing": {"__proto__": {"creditsPerCall": 9}}}`],
  ];
  for (const [before, after] of cases) {
    const document = new ConfigDocument(before);
    document.ranges([{ path: ['toolPricing'], part: 'value' }]);
    assertSameAsFresh(document.edited(after), after);
  }
});

test('edits that add, remove or move lines leave every diagnostic on its line', () => {
  const edits = [
    (text: string) => text.replace('\n      "creditsPerCall": 3', '\n\t"creditsPerCall": -3'),
    (text: string) => text.replace('\t"creditsPerCall": -3', '\t"creditsPerCall":\n\n-3'),
    (text: string) => text.replace('\t"creditsPerCall":\n\n-3', '\t"creditsPerCall": -3'),
    (text: string) => text.replace('"port": 0', '"port": "zero"'),
  ];
  let text = TOOLS;
  let document = new ConfigDocument(text);
  for (const edit of edits) {
    document.ranges([{ path: [], part: 'value' }]);
    text = edit(text);
    document = document.edited(text);
    assertSameAsFresh(document, text);
  }
});
