import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GateProcess, waitFor } from '../helpers/gate.ts';

test('without --refund-on-failure, failed calls are charged', async () => {
  const gate = await GateProcess.start(['--rate-limit', '0']);
  const { key } = await gate.createKey({ credits: 10 });
  assert.equal((await gate.callTool(key, 'fail')).json.result.isError, true);
  assert.equal((await gate.callTool(key, 'reject')).json.error.message, 'rejected on purpose');
  assert.equal(await gate.balance(key), 8);
});

test('with --refund-on-failure, isError results and JSON-RPC errors are refunded and recorded as such', async () => {
  const gate = await GateProcess.start(['--rate-limit', '0', '--refund-on-failure']);
  const { key } = await gate.createKey({ credits: 10 });
  assert.equal((await gate.callTool(key, 'fail')).json.result.isError, true);
  assert.equal((await gate.callTool(key, 'reject')).json.error.code, -32000);
  await gate.callTool(key, 'echo', { text: 'ok' });
  assert.equal(await gate.balance(key), 9);
  const usage = await gate.admin('GET', '/usage');
  assert.deepEqual(usage.json.events.map((event: { tool: string; status: string }) => [event.tool, event.status]), [
    ['fail', 'refunded'],
    ['reject', 'refunded'],
    ['echo', 'charged'],
  ]);
});

test('a call that times out fails with a clear error and is refunded', async () => {
  const gate = await GateProcess.start(['--rate-limit', '0', '--call-timeout', '200']);
  const { key } = await gate.createKey({ credits: 10 });
  const reply = await gate.callTool(key, 'slow', { ms: 3000 });
  assert.equal(reply.json.error.code, -32002);
  assert.match(reply.json.error.message, /did not answer tools\/call within 200 ms.*not charged/);
  assert.equal(await gate.balance(key), 10);
});

test('a backend that crashes mid-call: calls in flight fail and are refunded, /health says so, the backend comes back', async () => {
  const gate = await GateProcess.start(['--rate-limit', '0']);
  const { key } = await gate.createKey({ credits: 10 });
  const inFlight = [gate.callTool(key, 'slow', { ms: 2000 }, 1), gate.callTool(key, 'slow', { ms: 2000 }, 2)];
  await new Promise((resolve) => setTimeout(resolve, 100));
  const crash = await gate.callTool(key, 'crash', {}, 3);
  const health = await gate.health();
  assert.equal(health.status, 503);
  assert.match(health.json.reason, /exited with code 3/);
  for (const reply of [crash, ...(await Promise.all(inFlight))]) {
    assert.equal(reply.json.error.code, -32002);
    assert.match(reply.json.error.message, /not charged/);
  }
  assert.equal(await gate.balance(key), 10);
  await waitFor('the backend to restart', async () => ((await gate.health()).status === 200 ? true : undefined));
  assert.equal((await gate.callTool(key, 'echo', { text: 'back' })).json.result.content[0].text, 'back');
  assert.deepEqual(Object.values((await gate.health()).json.backends), [{ state: 'ready', restarts: 1 }]);
});
