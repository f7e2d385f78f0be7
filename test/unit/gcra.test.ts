import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gcra } from '../../server/src/gate/gcra.ts';

const MINUTE = 60_000;

function run(calls: number, limit: number, at: (i: number) => number): boolean[] {
  let tat: number | undefined;
  const results: boolean[] = [];
  for (let i = 0; i < calls; i++) {
    const result = gcra(tat, at(i), limit, MINUTE);
    if (result.allowed) tat = result.tat;
    results.push(result.allowed);
  }
  return results;
}

test('a burst of exactly the limit passes and the next call is refused', () => {
  const results = run(6, 5, () => 1000);
  assert.deepEqual(results, [true, true, true, true, true, false]);
});

test('capacity comes back at the limit rate: one call per interval after a burst', () => {
  let tat: number | undefined;
  for (let i = 0; i < 5; i++) tat = gcra(tat, 0, 5, MINUTE).tat;
  assert.equal(gcra(tat, 11_999, 5, MINUTE).allowed, false);
  const later = gcra(tat, 12_000, 5, MINUTE);
  assert.equal(later.allowed, true);
  assert.equal(later.remaining, 0);
});

test('remaining counts down and reset says when the bucket is empty again', () => {
  const first = gcra(undefined, 0, 60, MINUTE);
  assert.equal(first.remaining, 59);
  assert.equal(first.resetMs, 1000);
  const second = gcra(first.tat, 0, 60, MINUTE);
  assert.equal(second.remaining, 58);
  assert.equal(second.resetMs, 2000);
});

test('a denied call says how long until it could pass', () => {
  let tat: number | undefined;
  for (let i = 0; i < 2; i++) tat = gcra(tat, 0, 2, MINUTE).tat;
  const denied = gcra(tat, 1000, 2, MINUTE);
  assert.equal(denied.allowed, false);
  assert.equal(denied.retryAfterMs, 29_000);
});

test('a cost above the limit can never pass', () => {
  const result = gcra(undefined, 0, 5, MINUTE, 30);
  assert.equal(result.allowed, false);
  assert.equal(result.retryAfterMs, Number.POSITIVE_INFINITY);
});
