import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIN_KEY, GateProcess } from '../helpers/gate.ts';

const gate = await GateProcess.start(['--rate-limit', '0']);

test('POST /keys returns the key once; GET /keys never shows it', async () => {
  const created = await gate.admin('POST', '/keys', { name: 'acme', credits: 50, tags: { plan: 'pro' }, namespace: 'Acme-EU' });
  assert.equal(created.status, 201);
  assert.match(created.json.key, /^pg_[0-9a-f]{48}$/);
  assert.equal(created.json.namespace, 'acme-eu');
  assert.equal(created.json.keyPrefix, `${created.json.key.slice(0, 10)}...`);
  const listed = await gate.admin('GET', '/keys');
  assert.equal(listed.status, 200);
  assert.ok(!listed.text.includes(created.json.key));
  assert.ok(listed.json.some((key: { id: number; name: string }) => key.id === created.json.id && key.name === 'acme'));
  const page = await gate.admin('GET', '/keys?limit=1&offset=0');
  assert.equal(page.json.length, 1);
  assert.ok(Number(page.headers.get('x-total-count')) >= 1);
  const namespaced = await gate.admin('GET', '/keys?namespace=acme-eu');
  assert.deepEqual(namespaced.json.map((key: { name: string }) => key.name), ['acme']);
});

test('a bad body gets 400 naming the field; an unknown field is named too', async () => {
  const wrongType = await gate.admin('POST', '/keys', { credits: 'ten' });
  assert.equal(wrongType.status, 400);
  assert.match(wrongType.json.error, /body\.credits must be integer/);
  const negative = await gate.admin('POST', '/topup', { id: 1, credits: -5 });
  assert.match(negative.json.error, /body\.credits must be >= 1/);
  const unknown = await gate.admin('POST', '/keys', { name: 'x', credit: 5 });
  assert.match(unknown.json.error, /unknown field "credit"/);
  const badNamespace = await gate.admin('POST', '/keys', { namespace: 'no spaces!' });
  assert.match(badNamespace.json.error, /body\.namespace must be letters, digits and hyphens/);
  const badIp = await gate.admin('POST', '/keys', { ipAllowlist: ['10.0.0.0/33'] });
  assert.match(badIp.json.error, /body\.ipAllowlist\[0\] must be an IPv4 or IPv6 address or CIDR range/);
  const notJson = await gate.request('POST', '/keys', { headers: { 'x-admin-key': ADMIN_KEY, 'content-type': 'application/json' }, raw: '{nope' });
  assert.equal(notJson.status, 400);
  assert.match(notJson.json.error, /not valid JSON/);
});

test('topup, revoke, rotate: keys can be named by value or by id', async () => {
  const { key, id } = await gate.createKey({ credits: 1 });
  const topped = await gate.admin('POST', '/topup', { key, credits: 9 });
  assert.equal(topped.json.credits, 10);
  assert.equal((await gate.admin('POST', '/topup', { id, credits: 5 })).json.credits, 15);
  assert.equal((await gate.admin('POST', '/topup', { key, id, credits: 5 })).status, 400);
  assert.equal((await gate.admin('POST', '/topup', { key: 'pg_nobody', credits: 5 })).status, 404);
  const rotated = await gate.admin('POST', '/keys/rotate', { id });
  assert.equal(rotated.status, 200);
  assert.equal((await gate.callTool(key, 'count')).status, 401);
  assert.equal(await gate.balance(rotated.json.newKey), 15);
  assert.equal((await gate.admin('POST', '/keys/revoke', { key: rotated.json.newKey })).status, 200);
  const revoked = await gate.callTool(rotated.json.newKey, 'count');
  assert.equal(revoked.json.error.data.reason, 'key_revoked');
  assert.equal((await gate.admin('POST', '/keys/revoke', { id })).status, 409);
  assert.equal((await gate.admin('POST', '/topup', { id, credits: 1 })).status, 409);
});

test('acl, expiry, tags, ip and search change what they say', async () => {
  const { key, id } = await gate.createKey();
  const acl = await gate.admin('POST', '/keys/acl', { id, allowedTools: ['echo'], deniedTools: ['crash'] });
  assert.deepEqual([acl.json.allowedTools, acl.json.deniedTools], [['echo'], ['crash']]);
  assert.equal((await gate.admin('POST', '/keys/acl', { id })).status, 400);
  const expiry = await gate.admin('POST', '/keys/expiry', { id, expiresIn: 3600 });
  assert.ok(Date.parse(expiry.json.expiresAt) > Date.now());
  assert.equal((await gate.admin('POST', '/keys/expiry', { id })).status, 400, 'no silent clearing');
  assert.equal((await gate.admin('POST', '/keys/expiry', { id, expiresAt: 'tomorrow' })).status, 400);
  const tags = await gate.admin('POST', '/keys/tags', { id, tags: { team: 'search', plan: 'pro' } });
  assert.deepEqual(tags.json.tags, { team: 'search', plan: 'pro' });
  assert.deepEqual((await gate.admin('POST', '/keys/tags', { id, tags: { plan: null } })).json.tags, { team: 'search' });
  const ip = await gate.admin('POST', '/keys/ip', { id, ips: ['127.0.0.1', '::1'] });
  assert.deepEqual(ip.json.ipAllowlist, ['127.0.0.1', '::1']);
  assert.equal((await gate.callTool(key, 'echo', { text: 'still ok' })).json.result.content[0].text, 'still ok');
  const found = await gate.admin('POST', '/keys/search', { tags: { team: 'search' } });
  assert.deepEqual(found.json.keys.map((k: { id: number }) => k.id), [id]);
  assert.equal((await gate.admin('POST', '/keys/search', { tags: {} })).status, 400);
});

test('GET /usage pages with a cursor, filters by key, and exports quoted CSV', async () => {
  const { key } = await gate.createKey({ name: 'csv, "quoted"' });
  for (let i = 0; i < 3; i++) await gate.callTool(key, 'echo', { text: String(i) });
  const mine = await gate.admin('GET', `/usage?key=${key}`);
  assert.equal(mine.json.count, 3);
  const first = await gate.admin('GET', `/usage?key=${key}&limit=2`);
  assert.equal(first.json.events.length, 2);
  const rest = await gate.admin('GET', `/usage?key=${key}&limit=2&cursor=${first.json.nextCursor}`);
  assert.equal(rest.json.events.length, 1);
  assert.equal(rest.json.nextCursor, null);
  const csv = await gate.admin('GET', `/usage?key=${key}&format=csv`);
  assert.match(csv.headers.get('content-type')!, /text\/csv/);
  const lines = csv.text.trim().split('\r\n');
  assert.equal(lines[0], 'id,timestamp,apiKey,keyName,namespace,tool,creditsCharged,allowed,status,denyReason');
  assert.equal(lines.length, 4);
  assert.match(lines[1]!, /,"csv, ""quoted""",default,echo,1,true,charged,$/);
  assert.equal((await gate.admin('GET', '/usage?since=yesterday')).status, 400);
  assert.equal((await gate.admin('GET', '/usage?format=xml')).status, 400);
});

test('GET /status and /namespaces summarise keys and usage', async () => {
  const status = await gate.admin('GET', '/status');
  assert.equal(status.status, 200);
  assert.equal(Object.values<{ state: string }>(status.json.backends)[0]!.state, 'ready');
  assert.ok(status.json.usage.totalCalls > 0);
  assert.ok(status.json.usage.perTool.echo.calls > 0);
  const namespaces = await gate.admin('GET', '/namespaces');
  assert.ok(namespaces.json.namespaces.some((n: { namespace: string }) => n.namespace === 'acme-eu'));
  assert.equal(namespaces.json.count, namespaces.json.namespaces.length);
});

test('POST /keys/import adds keys from JSON lines and leaves existing keys alone', async () => {
  const existing = await gate.createKey({ credits: 7 });
  const fresh = `pg_${'cd'.repeat(24)}`;
  const body = [JSON.stringify({ key: fresh, name: 'migrated', credits: 30, namespace: 'legacy', group: 'ignored' }), JSON.stringify({ key: existing.key, credits: 999 })].join('\n');
  const imported = await gate.request('POST', '/keys/import', { headers: { 'x-admin-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' }, raw: body });
  assert.equal(imported.status, 200);
  assert.deepEqual(imported.json, { imported: 1, skipped: 1, ignoredFields: ['group'] });
  assert.equal(await gate.balance(fresh), 30);
  assert.equal(await gate.balance(existing.key), 7);
  const broken = await gate.request('POST', '/keys/import', { headers: { 'x-admin-key': ADMIN_KEY }, raw: '{"key":"pg_0123456789","credits":"many"}\n{oops' });
  assert.equal(broken.status, 400);
  assert.match(broken.json.error, /line 1\.credits must be integer; line 2: not valid JSON/);
});

test('GET /balance needs the key; a revoked key gets 403', async () => {
  assert.equal((await gate.request('GET', '/balance')).status, 401);
  const { key, id } = await gate.createKey({ credits: 3 });
  const balance = await gate.request('GET', '/balance', { headers: { authorization: `Bearer ${key}` } });
  assert.equal(balance.json.credits, 3);
  assert.equal(balance.json.id, undefined);
  await gate.admin('POST', '/keys/revoke', { id });
  assert.equal((await gate.request('GET', '/balance', { headers: { 'x-api-key': key } })).status, 403);
});

test('admin endpoints: 401 without the admin key, 405 for a wrong method, 404 for an unknown path, 413 for a huge body', async () => {
  assert.equal((await gate.request('GET', '/keys')).status, 401);
  const wrongMethod = await gate.admin('DELETE', '/keys');
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.get('allow'), 'POST, GET');
  assert.equal((await gate.admin('GET', '/nope')).status, 404);
  const huge = await gate.request('POST', '/keys', { headers: { 'x-admin-key': ADMIN_KEY }, raw: JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }) });
  assert.equal(huge.status, 413);
});

test('repeated wrong admin keys from one address are locked out with 429', async () => {
  const locked = await GateProcess.start();
  const statuses: number[] = [];
  for (let i = 0; i < 12; i++) statuses.push((await locked.request('GET', '/keys', { headers: { 'x-admin-key': `wrong-${i}` } })).status);
  assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401));
  assert.equal(statuses[10], 429);
  const lockedOut = await locked.admin('GET', '/keys');
  assert.equal(lockedOut.status, 429, 'even the right key waits out the lockout');
  assert.ok(Number(lockedOut.headers.get('retry-after')) >= 1);
});
