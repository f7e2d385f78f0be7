import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseBatch } from '../../server/src/engine/batch.ts';
import { parseToolCall, toolNameProblem } from '../../server/src/engine/toolCall.ts';

const ALPHABET = new Set('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.:');

/** The rule as MCP (2025-11-25) words it, plus the prefix separator: 1 to 128 characters, each from the alphabet. */
function followsRule(name: string): boolean {
  return name.length >= 1 && name.length <= 128 && [...name].every((char) => ALPHABET.has(char));
}

const names = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: fc.constantFrom(...ALPHABET), maxLength: 200 }),
  fc.string({ unit: fc.constantFrom(...ALPHABET, ' ', '/', '\u0000', 'é', '\ud800', '😀'), minLength: 120, maxLength: 140 }),
);

test('any string is accepted as a tool name exactly when it follows the rule, and checking never throws', () => {
  fc.assert(
    fc.property(names, (name) => {
      const problem = toolNameProblem(name);
      assert.equal(problem === undefined, followsRule(name), JSON.stringify(name));
      if (problem !== undefined) assert.match(problem, /1 to 128 characters from A-Z, a-z, 0-9/);
      const call = parseToolCall({ name, arguments: {} }, 'params');
      assert.equal('problem' in call, problem !== undefined);
    }),
    { numRuns: 2000 },
  );
});

test('a refused name is described by what breaks the rule', () => {
  assert.match(toolNameProblem('a'.repeat(129))!, /it is 129 characters long/);
  assert.match(toolNameProblem('read file')!, /it has " " at position 4/);
  assert.match(toolNameProblem('')!, /it is empty/);
  assert.equal(toolNameProblem('a'.repeat(128)), undefined);
  assert.equal(toolNameProblem('github:search_code.v2-beta'), undefined);
});

test('every call of a batch is held to the rule, by index', () => {
  const parsed = parseBatch({ calls: [{ name: 'echo' }, { name: 'x'.repeat(129) }] }, 10);
  assert.ok('problem' in parsed);
  assert.equal(parsed.reason, 'invalid_tool_name');
  assert.match(parsed.problem, /^params\.calls\[1\]\.name is not a valid tool name: it is 129 characters long/);
});
