import assert from 'node:assert/strict';
import { test } from 'node:test';
import { passedCount, regressions, runDirect, runThroughGate } from '../conformance/conformance.ts';

test('MCP conformance: every scenario that passes directly passes through the gate, and at least 28 of 32 pass', async () => {
  const direct = await runDirect();
  const gated = await runThroughGate();
  assert.equal(direct.scenarios.size, 32);
  assert.deepEqual(regressions(direct, gated), []);
  assert.ok(passedCount(gated) >= 28, `only ${passedCount(gated)} scenarios pass through the gate:\n${gated.output}`);
  assert.match(gated.total, /, 0 failed$/);
});
