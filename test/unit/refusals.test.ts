import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OVER_LIMIT, RefusedTraffic } from '../../server/src/http/refusals.ts';

const T0 = Date.UTC(2026, 0, 1);

test('refusals are counted per address and reason, and the busiest addresses come first', () => {
  const refusals = new RefusedTraffic({ limitPerMin: 0, maxAddresses: 100 });
  for (let i = 0; i < 30; i++) refusals.record(`10.0.0.${i % 12}`, i % 2 ? 'missing_api_key' : 'invalid_api_key', T0 + i);
  for (let i = 0; i < 5; i++) refusals.record('10.9.9.9', 'invalid_tool_name', T0 + 100 + i);
  const report = refusals.report();
  assert.equal(report.total, 35);
  assert.deepEqual(report.byReason, { invalid_api_key: 15, missing_api_key: 15, invalid_tool_name: 5 });
  assert.equal(report.tracked, 13);
  assert.equal(report.topAddresses.length, 10);
  assert.deepEqual(report.topAddresses[0], { address: '10.9.9.9', refused: 5, lastAt: new Date(T0 + 104).toISOString() });
  assert.ok(report.topAddresses.every((entry, i, all) => i === 0 || all[i - 1]!.refused >= entry.refused));
});

test('the table keeps a bounded number of addresses, dropping the least recently refused', () => {
  const refusals = new RefusedTraffic({ limitPerMin: 0, maxAddresses: 3 });
  refusals.record('a', 'missing_api_key', T0);
  refusals.record('b', 'missing_api_key', T0 + 1);
  refusals.record('c', 'missing_api_key', T0 + 2);
  refusals.record('a', 'missing_api_key', T0 + 3);
  refusals.record('d', 'missing_api_key', T0 + 4);
  const report = refusals.report();
  assert.deepEqual(report.topAddresses.map((entry) => entry.address).sort(), ['a', 'c', 'd']);
  assert.equal(report.dropped, 1);
  assert.equal(report.total, 5);
});

test('an address over its limit waits until its bucket has room again; others are not held back', () => {
  const refusals = new RefusedTraffic({ limitPerMin: 3, maxAddresses: 10 });
  for (let i = 0; i < 3; i++) {
    assert.equal(refusals.retryAfterSeconds('a', T0), undefined);
    refusals.record('a', 'missing_api_key', T0);
  }
  assert.equal(refusals.retryAfterSeconds('a', T0), 20);
  assert.equal(refusals.retryAfterSeconds('b', T0), undefined);
  refusals.record('a', OVER_LIMIT, T0);
  assert.equal(refusals.retryAfterSeconds('a', T0 + 19_000), 1, 'a 429 does not push the wait further');
  assert.equal(refusals.retryAfterSeconds('a', T0 + 20_000), undefined);
  refusals.limitPerMin = 0;
  refusals.record('a', 'missing_api_key', T0 + 20_000);
  assert.equal(refusals.retryAfterSeconds('a', T0 + 20_000), undefined, 'a limit of 0 is off');
});
