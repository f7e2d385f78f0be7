import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { Gate } from '../../server/src/index.ts';
import { openStateFile } from '../../server/src/store/open.ts';
import { tempDir } from '../helpers/tmp.ts';

test('evaluate and evaluateBatch decide without changing anything', () => {
  const gate = new Gate({ toolPricing: { search: { creditsPerCall: 5 } } });
  const { key } = gate.createKey({ credits: 12 });
  for (let i = 0; i < 3; i++) assert.equal(gate.evaluate(key, { name: 'search' }).allAllowed, true);
  const batch = gate.evaluateBatch(key, [{ name: 'search' }, { name: 'search' }, { name: 'search' }]);
  assert.deepEqual([batch.allAllowed, batch.failedIndex, batch.reason, batch.totalCredits], [false, 2, 'insufficient_credits', 15]);
  assert.equal(gate.balance(key), 12);
  gate.close();
});

test('consume charges an allowed batch and nothing of a refused one', async () => {
  const gate = new Gate({ globalRateLimitPerMin: 3 });
  const { key } = gate.createKey({ credits: 10 });
  assert.equal((await gate.consume(key, [{ name: 'a' }, { name: 'b' }])).remainingCredits, 8);
  const refused = await gate.consume(key, [{ name: 'a' }, { name: 'b' }]);
  assert.deepEqual([refused.allAllowed, refused.failedIndex, refused.reason], [false, 1, 'rate_limited']);
  assert.ok((refused.retryAfterSeconds ?? 0) >= 1);
  assert.equal(gate.balance(key), 8);
  gate.close();
});

test('unknown and missing keys are refused with their own reasons', () => {
  const gate = new Gate();
  assert.equal(gate.evaluate(undefined, { name: 'x' }).reason, 'missing_api_key');
  assert.equal(gate.evaluate('pg_nobody', { name: 'x' }).reason, 'invalid_api_key');
  assert.throws(() => gate.topUp('pg_nobody', 5), /no such key/);
  assert.throws(() => gate.topUp(gate.createKey().key, 0), /positive whole number/);
  gate.close();
});

test('with a stateFile, keys and balances outlive the Gate', async () => {
  const stateFile = path.join(tempDir(), 'state.db');
  const first = new Gate({ stateFile });
  const { key } = first.createKey({ credits: 5 });
  await first.consume(key, [{ name: 'x' }]);
  first.topUp(key, 10);
  first.close();
  const second = new Gate({ stateFile });
  assert.equal(second.balance(key), 14);
  second.close();
});

test('consume records the calls of stored keys in the state as the gate does: charged ones, and refused ones with their reason', async () => {
  const stateFile = path.join(tempDir(), 'state.db');
  const gate = new Gate({ stateFile, toolPricing: { search: { creditsPerCall: 4 } } });
  const { key } = gate.createKey({ credits: 6 });
  assert.equal((await gate.consume(key, [{ name: 'search' }])).allAllowed, true);
  assert.equal((await gate.consume(key, [{ name: 'echo' }, { name: 'search' }])).failedIndex, 1);
  // Anyone can present an unknown key: its refusal writes nothing.
  assert.equal((await gate.consume('pg_nobody', [{ name: 'echo' }])).reason, 'invalid_api_key');
  gate.close();
  const store = openStateFile(stateFile).store;
  const events = store.usage({ limit: 10 }).map((event) => [event.tool, event.status, event.credits, event.reason]);
  store.close();
  assert.deepEqual(events, [
    ['search', 'charged', 4, null],
    ['search', 'denied', 0, 'insufficient_credits'],
  ]);
});
