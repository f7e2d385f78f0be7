import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GateProcess } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

const config = path.join(tempDir(), 'paygate.json');
fs.writeFileSync(config, JSON.stringify({ toolPricing: { slow: { creditsPerCall: 4, rateLimitPerMin: 2 }, echo: { creditsPerKbInput: 1 } } }));
const gate = await GateProcess.start(['--rate-limit', '5', '--config', config]);

function reasonOf(reply: { json: { error?: { data?: { reason?: string } } } }): string {
  return reply.json.error?.data?.reason ?? 'ok';
}

test('the global rate limit refuses the call past the limit, with Retry-After and rate headers', async () => {
  const { key } = await gate.createKey();
  const replies = [];
  for (let i = 0; i < 6; i++) replies.push(await gate.callTool(key, 'count'));
  assert.deepEqual(replies.map(reasonOf), ['ok', 'ok', 'ok', 'ok', 'ok', 'rate_limited']);
  const refused = replies[5]!;
  assert.equal(refused.status, 200);
  assert.equal(refused.json.error.code, -32402);
  assert.equal(refused.headers.get('x-ratelimit-limit'), '5');
  assert.equal(refused.headers.get('x-ratelimit-remaining'), '0');
  assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  assert.equal(await gate.balance(key), 95);
});

test('a per-tool rate limit and price come from the config file', async () => {
  const { key } = await gate.createKey({ credits: 20 });
  const replies = [];
  for (let i = 0; i < 3; i++) replies.push(await gate.callTool(key, 'slow', { ms: 1 }));
  assert.deepEqual(replies.map(reasonOf), ['ok', 'ok', 'tool_rate_limited']);
  assert.equal(replies[0]!.headers.get('x-ratelimit-limit'), '2');
  assert.equal(await gate.balance(key), 12);
});

test('creditsPerKbInput charges large arguments more', async () => {
  const { key } = await gate.createKey({ credits: 100 });
  await gate.callTool(key, 'echo', { text: 'x'.repeat(3000) });
  assert.equal(await gate.balance(key), 100 - 1 - 3);
});

test('a daily call quota set through /keys/quota stops the key', async () => {
  const { key, id } = await gate.createKey();
  const set = await gate.admin('POST', '/keys/quota', { id, dailyCallLimit: 2 });
  assert.equal(set.status, 200);
  assert.deepEqual(set.json.quota, { dailyCallLimit: 2, monthlyCallLimit: 0, dailyCreditLimit: 0, monthlyCreditLimit: 0 });
  const replies = [await gate.callTool(key, 'count'), await gate.callTool(key, 'count'), await gate.callTool(key, 'count')];
  assert.deepEqual(replies.map(reasonOf), ['ok', 'ok', 'daily_call_quota_exceeded']);
});

test('a spending limit set through /limits caps what the key can spend', async () => {
  const { key } = await gate.createKey();
  assert.equal((await gate.admin('POST', '/limits', { key, spendingLimit: 2 })).status, 200);
  const replies = [await gate.callTool(key, 'count'), await gate.callTool(key, 'count'), await gate.callTool(key, 'count')];
  assert.deepEqual(replies.map(reasonOf), ['ok', 'ok', 'spending_limit_exceeded']);
});

test('an expired key is refused with 401 and says when it expired', async () => {
  const { key, id } = await gate.createKey();
  assert.equal((await gate.admin('POST', '/keys/expiry', { id, expiresAt: '2020-01-01T00:00:00Z' })).status, 200);
  const reply = await gate.callTool(key, 'count');
  assert.equal(reply.status, 401);
  assert.equal(reasonOf(reply), 'api_key_expired');
  assert.match(reply.json.error.message, /2020-01-01/);
});

test('an IP allowlist admits loopback and refuses a key bound to another network', async () => {
  const local = await gate.createKey({ ipAllowlist: ['127.0.0.0/8', '::1'] });
  assert.equal(reasonOf(await gate.callTool(local.key, 'count')), 'ok');
  const remote = await gate.createKey({ ipAllowlist: ['10.0.0.0/8'] });
  const refused = await gate.callTool(remote.key, 'count');
  assert.equal(reasonOf(refused), 'ip_not_allowed');
  const spoofed = await gate.mcp(
    { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'count' } },
    { key: remote.key, headers: { 'x-forwarded-for': '10.1.1.1' } },
  );
  assert.equal(reasonOf(spoofed), 'ip_not_allowed', 'X-Forwarded-For is ignored without --trust-proxy');
});

test('with --trust-proxy, the address the proxy appended to X-Forwarded-For counts', async () => {
  const proxied = await GateProcess.start(['--trust-proxy', '--rate-limit', '0']);
  const { key } = await proxied.createKey({ ipAllowlist: ['10.0.0.0/8'] });
  const call = (forwarded: string) =>
    proxied.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'count' } }, { key, headers: { 'x-forwarded-for': forwarded } });
  assert.equal(reasonOf(await call('10.1.1.1')), 'ok');
  assert.equal(reasonOf(await call('10.9.9.9, 192.168.0.5')), 'ip_not_allowed', 'only the hop the proxy added is trusted');
});

test('shadow mode serves refused calls without charging and records what it would have refused', async () => {
  const shadow = await GateProcess.start(['--shadow', '--rate-limit', '0']);
  const { key } = await shadow.createKey({ credits: 0 });
  const reply = await shadow.callTool(key, 'echo', { text: 'free ride' });
  assert.equal(reply.json.result.content[0].text, 'free ride');
  assert.equal(await shadow.balance(key), 0);
  const usage = await shadow.admin('GET', '/usage');
  assert.deepEqual(usage.json.events.map((event: { status: string; denyReason: string }) => [event.status, event.denyReason]), [['shadow', 'insufficient_credits']]);
});
