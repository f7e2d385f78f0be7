import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GateProcess, type Reply } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

const config = path.join(tempDir(), 'paygate.json');
fs.writeFileSync(config, JSON.stringify({ toolPricing: { slow: { creditsPerCall: 4, rateLimitPerMin: 1 }, echo: { creditsPerCall: 3 } } }));
const gate = await GateProcess.start(['--rate-limit', '3', '--config', config]);

/** paygate-mcp 2.9.0's `error.message` for each refusal (its src/gate.ts, rate-limiter.ts and quota.ts), then ours after " — ". */
function assertMessage(reply: Reply, reason: string, legacy: string, ours: string): void {
  assert.equal(reply.json.error.data.reason, reason);
  assert.equal(reply.json.error.message, `Payment required: ${legacy} — ${ours}`);
}

async function calls(key: string, tool: string, times: number): Promise<Reply> {
  let reply!: Reply;
  for (let i = 0; i < times; i++) reply = await gate.callTool(key, tool, { ms: 1 });
  return reply;
}

function batch(key: string, tools: string[]): Promise<Reply> {
  return gate.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/call_batch', params: { calls: tools.map((name) => ({ name, arguments: {} })) } }, { key });
}

test("a refused key's message starts with paygate-mcp 2.9.0's words, which did not tell a revoked key from an unknown one", async () => {
  assertMessage(await gate.callTool(undefined, 'count'), 'missing_api_key', 'missing_api_key', 'an API key is required: send it in the X-API-Key header or as Authorization: Bearer <key>');
  assertMessage(await gate.callTool('pg_not_a_real_key', 'count'), 'invalid_api_key', 'invalid_api_key', 'the API key is not valid');
  const revoked = await gate.createKey();
  assert.equal((await gate.admin('POST', '/keys/revoke', { id: revoked.id })).status, 200);
  assertMessage(await gate.callTool(revoked.key, 'count'), 'key_revoked', 'invalid_api_key', 'the API key has been revoked');
  const expired = await gate.createKey();
  assert.equal((await gate.admin('POST', '/keys/expiry', { id: expired.id, expiresAt: '2020-01-01T00:00:00Z' })).status, 200);
  assertMessage(await gate.callTool(expired.key, 'count'), 'api_key_expired', 'api_key_expired', 'the API key expired at 2020-01-01T00:00:00.000Z');
  const elsewhere = await gate.createKey({ ipAllowlist: ['10.0.0.0/8'] });
  assertMessage(
    await gate.callTool(elsewhere.key, 'count'),
    'ip_not_allowed',
    'ip_not_allowed: 127.0.0.1 not in allowlist',
    "requests from 127.0.0.1 are not in this key's IP allowlist",
  );
});

test("a refused call's message starts with paygate-mcp 2.9.0's words, numbers included", async () => {
  const cases: [() => Promise<Reply>, string, string, string][] = [
    [async () => gate.callTool((await gate.createKey({ allowedTools: ['echo'] })).key, 'count'), 'tool_not_allowed', 'tool_not_allowed: count not in allowedTools', 'this key may not call "count": it is not in the key\'s allowed tools'],
    [async () => gate.callTool((await gate.createKey({ deniedTools: ['count'] })).key, 'count'), 'tool_denied', 'tool_denied: count is in deniedTools', 'this key may not call "count": it is in the key\'s denied tools'],
    [async () => calls((await gate.createKey()).key, 'count', 4), 'rate_limited', 'rate_limited: 3 calls/min exceeded', 'rate limit reached: this key may make 3 calls per minute'],
    [async () => calls((await gate.createKey()).key, 'slow', 2), 'tool_rate_limited', 'tool_rate_limited: slow limited to 1 calls/min', 'rate limit reached: this key may call "slow" 1 times per minute'],
    [async () => calls((await gate.createKey({ credits: 3 })).key, 'slow', 1), 'insufficient_credits', 'insufficient_credits: need 4, have 3', 'not enough credits: this call costs 4, the key has 3; top up to continue'],
    [async () => calls((await gate.createKey({ spendingLimit: 2 })).key, 'count', 3), 'spending_limit_exceeded', 'spending_limit_exceeded: limit 2, spent 2, need 1', 'spending limit reached: 2 of 2 credits spent, 1 more needed'],
    [async () => calls((await gate.createKey({ quota: { dailyCallLimit: 1 } })).key, 'count', 2), 'daily_call_quota_exceeded', 'daily_call_quota_exceeded: 1/1 calls today', 'daily call quota reached: 1 of 1 calls used today (resets at 00:00 UTC)'],
    [async () => calls((await gate.createKey({ quota: { monthlyCallLimit: 1 } })).key, 'count', 2), 'monthly_call_quota_exceeded', 'monthly_call_quota_exceeded: 1/1 calls this month', 'monthly call quota reached: 1 of 1 calls used this month'],
    [async () => calls((await gate.createKey({ quota: { dailyCreditLimit: 1 } })).key, 'count', 2), 'daily_credit_quota_exceeded', 'daily_credit_quota_exceeded: 1+1 would exceed 1 credits/day', 'daily credit quota reached: 1 + 1 would exceed 1 credits today'],
    [async () => calls((await gate.createKey({ quota: { monthlyCreditLimit: 1 } })).key, 'count', 2), 'monthly_credit_quota_exceeded', 'monthly_credit_quota_exceeded: 1+1 would exceed 1 credits/month', 'monthly credit quota reached: 1 + 1 would exceed 1 credits this month'],
  ];
  for (const [refuse, reason, legacy, ours] of cases) assertMessage(await refuse(), reason, legacy, ours);
});

test("a refused batch's message starts with paygate-mcp 2.9.0's words for the whole batch, then names the call", async () => {
  const poor = await gate.createKey({ credits: 5 });
  assertMessage(
    await batch(poor.key, ['echo', 'echo']),
    'insufficient_credits',
    'insufficient_credits: need 6, have 5',
    'call 1 (echo) was refused, so nothing in the batch ran and nothing was charged: not enough credits: these 2 calls cost 6, the key has 5; top up to continue',
  );
  const quota = await gate.createKey({ quota: { dailyCallLimit: 2 } });
  assertMessage(
    await batch(quota.key, ['count', 'count', 'count']),
    'daily_call_quota_exceeded',
    'daily_call_quota_exceeded: 0+3 would exceed 2 calls/day',
    'call 2 (count) was refused, so nothing in the batch ran and nothing was charged: daily call quota reached: 0 of 2 calls used today (resets at 00:00 UTC)',
  );
  assert.equal(await gate.balance(poor.key), 5);
});
