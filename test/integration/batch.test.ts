import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GateProcess } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

const config = path.join(tempDir(), 'paygate.json');
fs.writeFileSync(config, JSON.stringify({ toolPricing: { slow: { creditsPerCall: 3 } }, maxBatchSize: 40, refundOnFailure: true }));
const gate = await GateProcess.start(['--rate-limit', '0', '--config', config]);

function batch(key: string | undefined, calls: unknown, id: number | string = 1) {
  return gate.mcp({ jsonrpc: '2.0', id, method: 'tools/call_batch', params: { calls } }, key === undefined ? {} : { key });
}

async function executed(): Promise<number> {
  const { key } = await gate.createKey();
  return (await gate.callTool(key, 'count')).json.result.structuredContent.executed;
}

test('a batch runs every call and answers each, in order, with what it cost', async () => {
  const { key } = await gate.createKey({ credits: 20 });
  const reply = await batch(key, [
    { name: 'echo', arguments: { text: 'a' } },
    { name: 'slow', arguments: { ms: 20, text: 'b' } },
    { name: 'echo', arguments: { text: 'c' } },
  ]);
  const { results, totalCreditsCharged, remainingCredits } = reply.json.result;
  assert.deepEqual(results.map((r: { tool: string; result: { content: { text: string }[] } }) => [r.tool, r.result.content[0]!.text]), [
    ['echo', 'a'], ['slow', 'b'], ['echo', 'c'],
  ]);
  assert.deepEqual(results.map((r: { creditsCharged: number }) => r.creditsCharged), [1, 3, 1]);
  assert.equal(totalCreditsCharged, 5);
  assert.equal(remainingCredits, 15);
  assert.equal(reply.headers.get('x-credits-remaining'), '15');
});

test('one refused call refuses the whole batch: nothing runs upstream and nothing is charged', async () => {
  const { key } = await gate.createKey({ credits: 50, deniedTools: ['crash'] });
  const before = await executed();
  const reply = await batch(key, [{ name: 'echo', arguments: { text: 'x' } }, { name: 'crash' }, { name: 'echo' }]);
  assert.equal(reply.json.error.code, -32402);
  assert.equal(reply.json.error.data.failedIndex, 1);
  assert.equal(reply.json.error.data.reason, 'tool_denied');
  assert.match(reply.json.error.message, /call 1 \(crash\) was refused, so nothing in the batch ran and nothing was charged/);
  assert.equal(await executed(), before, 'no call of the batch reached the server');
  assert.equal(await gate.balance(key), 50);
});

test('a batch that costs more than the balance names the first call that does not fit', async () => {
  const { key } = await gate.createKey({ credits: 7 });
  const reply = await batch(key, [{ name: 'slow', arguments: { ms: 1 } }, { name: 'slow', arguments: { ms: 1 } }, { name: 'slow', arguments: { ms: 1 } }]);
  assert.equal(reply.json.error.data.reason, 'insufficient_credits');
  assert.equal(reply.json.error.data.failedIndex, 2);
  assert.equal(reply.json.error.data.totalCreditsRequired, 9);
  assert.equal(await gate.balance(key), 7);
});

test('with refunds on, each failed call of a batch is refunded alone', async () => {
  const { key } = await gate.createKey({ credits: 10 });
  const reply = await batch(key, [{ name: 'echo', arguments: { text: 'ok' } }, { name: 'fail' }, { name: 'reject' }, { name: 'echo', arguments: { text: 'ok' } }]);
  const { results, totalCreditsCharged } = reply.json.result;
  assert.deepEqual(results.map((r: { creditsCharged: number }) => r.creditsCharged), [1, 0, 0, 1]);
  assert.equal(results[1].result.isError, true);
  assert.equal(results[2].error.message, 'rejected on purpose');
  assert.equal(totalCreditsCharged, 2);
  assert.equal(await gate.balance(key), 8);
});

test('batches racing single calls on a small balance never overspend', async () => {
  const { key } = await gate.createKey({ credits: 25 });
  const work = [];
  for (let i = 0; i < 20; i++) {
    work.push(batch(key, [{ name: 'echo' }, { name: 'echo' }, { name: 'echo' }], `b${i}`));
    work.push(gate.callTool(key, 'echo', { text: 's' }, `s${i}`));
  }
  const replies = await Promise.all(work);
  let charged = 0;
  for (const reply of replies) {
    if (reply.json.result?.totalCreditsCharged !== undefined) charged += reply.json.result.totalCreditsCharged;
    else if (reply.json.result) charged += 1;
  }
  assert.ok(charged <= 25, `charged ${charged}`);
  assert.equal(await gate.balance(key), 25 - charged);
  assert.ok(charged >= 23, `the balance should be nearly used up, charged ${charged}`);
});

test('malformed batches get -32602 naming the problem and the index, never a 5xx', async () => {
  const { key } = await gate.createKey();
  const cases: [unknown, RegExp][] = [
    [undefined, /params\.calls: an array/],
    ['echo', /params\.calls: an array/],
    [[], /params\.calls is empty/],
    [[null], /params\.calls\[0\] must be an object/],
    [[{ name: 'echo' }, { arguments: {} }], /params\.calls\[1\]\.name must be the tool's name/],
    [[{ name: 42 }], /params\.calls\[0\]\.name must be the tool's name/],
    [[{ name: 'echo', arguments: [1] }], /params\.calls\[0\]\.arguments must be an object/],
    [Array.from({ length: 41 }, () => ({ name: 'echo' })), /41 calls; a batch may have at most 40/],
  ];
  for (const [calls, expected] of cases) {
    const reply = await batch(key, calls);
    assert.equal(reply.status, 200);
    assert.equal(reply.json.error.code, -32602, JSON.stringify(calls)?.slice(0, 80));
    assert.match(reply.json.error.message, expected);
  }
});

test('a batch without a key is 401; initialize tells clients about tools/call_batch', async () => {
  assert.equal((await batch(undefined, [{ name: 'echo' }])).status, 401);
  const init = await gate.mcp({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
  assert.deepEqual(init.json.result.capabilities.experimental['paygate/batch'], { method: 'tools/call_batch', maxCalls: 40 });
  assert.match(init.json.result.instructions, /tools\/call_batch/);
});

test('each call of a batch counts against the rate limit: 30 calls against 5 a minute are refused', async () => {
  const limited = await GateProcess.start(['--rate-limit', '5']);
  const { key } = await limited.createKey();
  const reply = await limited.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/call_batch', params: { calls: Array.from({ length: 30 }, () => ({ name: 'echo' })) } }, { key });
  assert.equal(reply.json.error.data.reason, 'rate_limited');
  assert.equal(reply.json.error.data.failedIndex, 5);
  assert.equal(await limited.balance(key), 100);
  const five = await limited.mcp({ jsonrpc: '2.0', id: 2, method: 'tools/call_batch', params: { calls: Array.from({ length: 5 }, () => ({ name: 'echo' })) } }, { key });
  assert.equal(five.json.result.totalCreditsCharged, 5);
});
