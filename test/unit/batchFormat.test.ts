import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { argumentSkeleton, argumentsProblem, batchFileText, batchReport, parseBatchFile } from '../../client/src/batchFormat.ts';

test('the argument skeleton holds every required argument with a value of its type, or its default', () => {
  const schema = {
    type: 'object',
    properties: { query: { type: 'string' }, limit: { type: 'integer', default: 5 }, exact: { type: 'boolean' }, tags: { type: 'array' }, unit: { enum: ['c', 'f'] } },
    required: ['query', 'limit', 'exact', 'tags', 'unit'],
  };
  assert.deepEqual(argumentSkeleton(schema), { query: '', limit: 5, exact: false, tags: [], unit: 'c' });
  assert.deepEqual(argumentSkeleton(undefined), {});
});

test('typed arguments must be a JSON object, with a message that says so', () => {
  assert.equal(argumentsProblem('{"query": "x"}'), undefined);
  assert.match(argumentsProblem('[1]')!, /must be a JSON object/);
  assert.match(argumentsProblem('{query}')!, /not valid JSON/);
});

test('a batch file round-trips, and a malformed one is refused naming the call', () => {
  const calls = [{ name: 'search', arguments: { query: 'x' } }, { name: 'echo' }];
  assert.deepEqual(parseBatchFile(batchFileText(calls)), { calls });
  assert.deepEqual(parseBatchFile('{"calls": []}'), { problem: 'a batch file needs "calls": a non-empty array of {"name", "arguments"}' });
  assert.deepEqual(parseBatchFile('{"calls": [{"name": "a"}, {"arguments": {}}]}'), { problem: 'calls[1] needs "name": the tool to call' });
  assert.deepEqual(parseBatchFile('{"calls": [{"name": "a", "arguments": [1]}]}'), { problem: 'calls[0].arguments must be an object' });
});

test('any text given as a batch file gives calls or a problem, never an exception', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
      const parsed = parseBatchFile(text);
      assert.ok('calls' in parsed || typeof parsed.problem === 'string');
    }),
  );
});

test('the report shows each call\'s result and credits, the total and what is left', () => {
  const report = batchReport(
    [{ name: 'echo', arguments: { text: 'hi | there' } }, { name: 'fail' }],
    {
      ok: true,
      results: [
        { tool: 'echo', result: { content: [{ type: 'text', text: 'hi | there' }] }, creditsCharged: 1 },
        { tool: 'fail', error: { code: -32603, message: 'backend exploded' }, creditsCharged: 0 },
      ],
      totalCreditsCharged: 1,
      remainingCredits: 41,
    },
    'Dev key',
  );
  assert.match(report, /2 calls · \*\*1 credit charged\*\* · 41 credits left/);
  assert.match(report, /\| 0 \| echo \| 1 \| ok \|/);
  assert.match(report, /\| 1 \| fail \| 0 \| error -32603: backend exploded \|/);
  assert.match(report, /## 0\. echo — 1 credit\n/);
  assert.match(report, /```\nhi \| there\n```/);
});

test('a refused batch says that nothing ran and nothing was charged, with the gate\'s reason', () => {
  const report = batchReport([{ name: 'weather' }], { ok: false, code: -32402, message: 'call 0 (weather) was refused: insufficient credits' }, 'customer');
  assert.match(report, /Refused: nothing ran and nothing was charged/);
  assert.match(report, /> call 0 \(weather\) was refused: insufficient credits \(JSON-RPC error -32402\)/);
});
