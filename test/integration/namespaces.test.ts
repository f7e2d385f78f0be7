import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIN_KEY, GateProcess } from '../helpers/gate.ts';

const gate = await GateProcess.start(['--rate-limit', '0']);
const acme = [await gate.createKey({ namespace: 'Acme', credits: 10, tags: { plan: 'pro' } }), await gate.createKey({ namespace: 'acme', credits: 20, tags: { plan: 'pro' } })];
const globex = await gate.createKey({ namespace: 'globex', credits: 30, tags: { plan: 'pro' } });
const plain = await gate.createKey({ credits: 40 });
await gate.callTool(acme[0]!.key, 'echo', { text: 'a' });
await gate.callTool(acme[1]!.key, 'echo', { text: 'a' });
await gate.callTool(globex.key, 'echo', { text: 'g' });
await gate.callTool(globex.key, 'echo', { text: 'g' });
await gate.callTool(plain.key, 'echo', { text: 'p' });
await gate.admin('POST', '/keys/revoke', { id: acme[1]!.id });

test('namespaces are letters, digits and hyphens, stored lower-case; anything else is refused, never rewritten', async () => {
  const keys = await gate.admin('GET', '/keys?namespace=acme');
  assert.deepEqual(keys.json.map((key: { namespace: string }) => key.namespace), ['acme', 'acme']);
  for (const namespace of ['acme corp', 'ac_me', 'x'.repeat(51), '', 'acmé']) {
    const reply = await gate.admin('POST', '/keys', { namespace });
    assert.equal(reply.status, 400, namespace);
    assert.match(reply.json.error, /body\.namespace must be letters, digits and hyphens, at most 50 characters/);
  }
  assert.equal((await gate.admin('GET', '/keys?namespace=acme%20corp')).status, 400);
});

test('GET /keys, /usage and /keys/search filtered by namespace show nothing of another namespace', async () => {
  const keys = await gate.admin('GET', '/keys?namespace=globex');
  assert.deepEqual(keys.json.map((key: { id: number }) => key.id), [globex.id]);
  const usage = await gate.admin('GET', '/usage?namespace=acme');
  assert.equal(usage.json.count, 2);
  assert.ok(usage.json.events.every((event: { namespace: string }) => event.namespace === 'acme'));
  const csv = await gate.admin('GET', '/usage?namespace=globex&format=csv');
  assert.equal(csv.text.trim().split('\r\n').length, 3);
  assert.doesNotMatch(csv.text, /acme/);
  const search = await gate.admin('POST', '/keys/search', { tags: { plan: 'pro' }, namespace: 'acme' });
  assert.deepEqual(search.json.keys.map((key: { id: number }) => key.id).sort(), acme.map((key) => key.id).sort());
  const everywhere = await gate.admin('POST', '/keys/search', { tags: { plan: 'pro' } });
  assert.equal(everywhere.json.count, 3);
});

test('GET /status filtered by namespace counts only that namespace', async () => {
  const status = await gate.admin('GET', '/status?namespace=acme');
  assert.equal(status.json.filteredNamespace, 'acme');
  assert.equal(status.json.keys, 2);
  assert.equal(status.json.activeKeys, 1);
  assert.equal(status.json.usage.totalCalls, 2);
  assert.equal(status.json.usage.totalCreditsSpent, 2);
  assert.equal(status.json.usage.totalCreditsRemaining, 9 + 19);
  assert.equal(status.json.namespaces, undefined);
  assert.equal(status.json.usage.perTool, undefined);
  const all = await gate.admin('GET', '/status');
  assert.deepEqual(all.json.namespaces, ['acme', 'default', 'globex']);
});

test('GET /namespaces sums keys, active keys, credits and spend per namespace', async () => {
  const reply = await gate.admin('GET', '/namespaces');
  assert.deepEqual(reply.json, {
    namespaces: [
      { namespace: 'acme', keyCount: 2, activeKeys: 1, totalCredits: 28, totalSpent: 2 },
      { namespace: 'default', keyCount: 1, activeKeys: 1, totalCredits: 39, totalSpent: 1 },
      { namespace: 'globex', keyCount: 1, activeKeys: 1, totalCredits: 28, totalSpent: 2 },
    ],
    count: 3,
  });
});

test('keys imported from a paygate-mcp 2.x state without a namespace land in "default"', async () => {
  const own = await GateProcess.start(['--rate-limit', '0']);
  const key = `pg_${'12'.repeat(24)}`;
  const imported = await own.request('POST', '/keys/import', { headers: { 'x-admin-key': ADMIN_KEY }, raw: JSON.stringify([[key, { key, credits: 5 }]]) });
  assert.equal(imported.json.imported, 1);
  const listed = await own.admin('GET', '/keys?namespace=default');
  assert.equal(listed.json.length, 1);
});
