import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PolicyEngine, type BatchDecision } from '../../server/src/gate/policyEngine.ts';
import { applyCharge } from '../../server/src/gate/accounting.ts';
import { toolPricing } from '../../server/src/gate/pricing.ts';
import type { Caller, CallRequest, KeyRecord } from '../../server/src/gate/types.ts';
import { keyRecord, NOW, policy } from '../helpers/records.ts';

function caller(record: KeyRecord | undefined, clientIp = '127.0.0.1'): Caller {
  return { record, presentedKey: true, clientIp };
}

/** The decision on one call: a batch of one. */
function evaluate(gate: PolicyEngine, who: Caller, request: CallRequest, now: number): BatchDecision {
  return gate.evaluateBatch(who, [request], now);
}

function reason(decision: BatchDecision): string {
  return decision.allAllowed ? 'allowed' : decision.reason;
}

/** Evaluates, then (if allowed) consumes and charges, as the engine does. */
function call(gate: PolicyEngine, record: KeyRecord, tool = 'echo', now = NOW, argBytes = 0): BatchDecision {
  const decision = evaluate(gate, caller(record), { tool, argBytes }, now);
  if (decision.allAllowed) {
    gate.consume(decision.buckets);
    applyCharge(record, decision.totalCredits, 1, now);
  }
  return decision;
}

test('a call costs the tool price, or the default price for unpriced tools', () => {
  const gate = new PolicyEngine(policy({ defaultCreditsPerCall: 2, toolPricing: { search: { creditsPerCall: 5 } } }));
  const record = keyRecord();
  assert.equal(evaluate(gate, caller(record), { tool: 'search', argBytes: 0 }, NOW).totalCredits, 5);
  assert.equal(evaluate(gate, caller(record), { tool: 'echo', argBytes: 0 }, NOW).totalCredits, 2);
});

test('creditsPerKbInput adds credits for every started KiB of arguments', () => {
  const gate = new PolicyEngine(policy({ toolPricing: { summarize: { creditsPerCall: 1, creditsPerKbInput: 2 } } }));
  const record = keyRecord();
  assert.equal(evaluate(gate, caller(record), { tool: 'summarize', argBytes: 0 }, NOW).totalCredits, 1);
  assert.equal(evaluate(gate, caller(record), { tool: 'summarize', argBytes: 10 }, NOW).totalCredits, 2);
  assert.equal(evaluate(gate, caller(record), { tool: 'summarize', argBytes: 1024 }, NOW).totalCredits, 3);
  assert.equal(evaluate(gate, caller(record), { tool: 'summarize', argBytes: 1025 }, NOW).totalCredits, 4);
});

test('the pricing told to clients names the rate limit that applies: the lower of the tool\'s and the global one', () => {
  const rules = policy({
    globalRateLimitPerMin: 60,
    toolPricing: { search: { creditsPerCall: 3, rateLimitPerMin: 10 }, report: { rateLimitPerMin: 100 }, echo: { rateLimitPerMin: 0 } },
  });
  assert.deepEqual(toolPricing(rules, 'search'), { creditsPerCall: 3, creditsPerKbInput: 0, rateLimitPerMin: 10 });
  assert.equal(toolPricing(rules, 'report').rateLimitPerMin, 60);
  assert.equal(toolPricing(rules, 'echo').rateLimitPerMin, 60);
  assert.equal(toolPricing(policy({ toolPricing: { search: { rateLimitPerMin: 10 } } }), 'search').rateLimitPerMin, 10);
  assert.equal(toolPricing(policy(), 'anything').rateLimitPerMin, 0);
});

test('keys are refused when missing, unknown, revoked or expired, each with its own reason', () => {
  const gate = new PolicyEngine(policy());
  assert.equal(reason(evaluate(gate, { record: undefined, presentedKey: false, clientIp: undefined }, { tool: 'echo', argBytes: 0 }, NOW)), 'missing_api_key');
  assert.equal(reason(evaluate(gate, caller(undefined), { tool: 'echo', argBytes: 0 }, NOW)), 'invalid_api_key');
  assert.equal(reason(call(gate, keyRecord({ active: false }))), 'key_revoked');
  assert.equal(reason(call(gate, keyRecord({ expiresAt: NOW }))), 'api_key_expired');
  assert.equal(reason(call(gate, keyRecord({ expiresAt: NOW + 1 }))), 'allowed');
});

test('credits run out exactly: a key with 3 credits gets 3 calls at 1 credit', () => {
  const gate = new PolicyEngine(policy());
  const record = keyRecord({ credits: 3 });
  const results = Array.from({ length: 5 }, () => reason(call(gate, record)));
  assert.deepEqual(results, ['allowed', 'allowed', 'allowed', 'insufficient_credits', 'insufficient_credits']);
  assert.equal(record.credits, 0);
  assert.equal(record.totalSpent, 3);
});

test('the allow-list admits only its tools and the deny-list refuses its tools', () => {
  const gate = new PolicyEngine(policy());
  const allowOnly = keyRecord({ allowedTools: ['search'] });
  assert.equal(reason(call(gate, allowOnly, 'search')), 'allowed');
  assert.equal(reason(call(gate, allowOnly, 'echo')), 'tool_not_allowed');
  const deny = keyRecord({ deniedTools: ['delete'] });
  assert.equal(reason(call(gate, deny, 'delete')), 'tool_denied');
  assert.equal(reason(call(gate, deny, 'echo')), 'allowed');
});

test('the global rate limit counts all tools of a key, and keys do not share it', () => {
  const gate = new PolicyEngine(policy({ globalRateLimitPerMin: 3 }));
  const a = keyRecord();
  const b = keyRecord();
  assert.deepEqual([call(gate, a, 'x'), call(gate, a, 'y'), call(gate, a, 'z'), call(gate, a, 'x')].map(reason), [
    'allowed', 'allowed', 'allowed', 'rate_limited',
  ]);
  assert.equal(reason(call(gate, b)), 'allowed');
  const denied = call(gate, a);
  assert.ok(!denied.allAllowed && denied.retryAfterSeconds === 20);
  assert.equal(reason(call(gate, a, 'x', NOW + 20_000)), 'allowed');
});

test('a per-tool rate limit applies to that tool only', () => {
  const gate = new PolicyEngine(policy({ globalRateLimitPerMin: 100, toolPricing: { search: { rateLimitPerMin: 2 } } }));
  const record = keyRecord();
  assert.deepEqual([call(gate, record, 'search'), call(gate, record, 'search'), call(gate, record, 'search')].map(reason), [
    'allowed', 'allowed', 'tool_rate_limited',
  ]);
  assert.equal(reason(call(gate, record, 'echo')), 'allowed');
  const status = evaluate(gate, caller(record), { tool: 'search', argBytes: 0 }, NOW).rateLimit;
  assert.deepEqual(status, { limit: 2, remaining: 0, resetSeconds: 60 });
});

test('a refused call uses no rate-limit capacity', () => {
  const gate = new PolicyEngine(policy({ globalRateLimitPerMin: 2 }));
  const broke = keyRecord({ credits: 0 });
  for (let i = 0; i < 5; i++) assert.equal(reason(call(gate, broke)), 'insufficient_credits');
  broke.credits = 10;
  assert.equal(reason(call(gate, broke)), 'allowed');
});

test('the spending limit caps total spend', () => {
  const gate = new PolicyEngine(policy({ defaultCreditsPerCall: 4 }));
  const record = keyRecord({ spendingLimit: 10 });
  assert.deepEqual([call(gate, record), call(gate, record), call(gate, record)].map(reason), ['allowed', 'allowed', 'spending_limit_exceeded']);
});

test('daily call and credit quotas stop a key until the next UTC day', () => {
  const gate = new PolicyEngine(policy({ globalQuota: { dailyCallLimit: 2, monthlyCallLimit: 0, dailyCreditLimit: 0, monthlyCreditLimit: 0 } }));
  const record = keyRecord();
  assert.deepEqual([call(gate, record), call(gate, record), call(gate, record)].map(reason), ['allowed', 'allowed', 'daily_call_quota_exceeded']);
  const tomorrow = Date.parse('2026-11-26T00:00:01Z');
  assert.equal(reason(call(gate, record, 'echo', tomorrow)), 'allowed');

  const credits = keyRecord({ quota: { dailyCallLimit: 0, monthlyCallLimit: 0, dailyCreditLimit: 3, monthlyCreditLimit: 0 } });
  const pricey = new PolicyEngine(policy({ defaultCreditsPerCall: 2 }));
  assert.deepEqual([call(pricey, credits), call(pricey, credits)].map(reason), ['allowed', 'daily_credit_quota_exceeded']);
});

test('monthly quotas carry across days but not across months', () => {
  const gate = new PolicyEngine(policy());
  const record = keyRecord({ quota: { dailyCallLimit: 0, monthlyCallLimit: 2, dailyCreditLimit: 0, monthlyCreditLimit: 0 } });
  call(gate, record, 'echo', Date.parse('2026-11-02T00:00:00Z'));
  call(gate, record, 'echo', Date.parse('2026-11-03T00:00:00Z'));
  assert.equal(reason(call(gate, record, 'echo', Date.parse('2026-11-29T00:00:00Z'))), 'monthly_call_quota_exceeded');
  assert.equal(reason(call(gate, record, 'echo', Date.parse('2026-12-01T00:00:00Z'))), 'allowed');
});

test('a key quota replaces the global quota', () => {
  const gate = new PolicyEngine(policy({ globalQuota: { dailyCallLimit: 1, monthlyCallLimit: 0, dailyCreditLimit: 0, monthlyCreditLimit: 0 } }));
  const generous = keyRecord({ quota: { dailyCallLimit: 3, monthlyCallLimit: 0, dailyCreditLimit: 0, monthlyCreditLimit: 0 } });
  assert.deepEqual([call(gate, generous), call(gate, generous), call(gate, generous), call(gate, generous)].map(reason), [
    'allowed', 'allowed', 'allowed', 'daily_call_quota_exceeded',
  ]);
});

test('IP allowlists accept IPv4 and IPv6 ranges and IPv4-mapped addresses', () => {
  const gate = new PolicyEngine(policy());
  const record = keyRecord({ ipAllowlist: ['10.0.0.0/8', '2001:db8::/32', '192.168.1.7'] });
  const verdict = (ip: string | undefined) => reason(evaluate(gate, caller(record, ip as string), { tool: 'echo', argBytes: 0 }, NOW));
  assert.equal(verdict('10.1.2.3'), 'allowed');
  assert.equal(verdict('::ffff:10.1.2.3'), 'allowed');
  assert.equal(verdict('2001:db8:1::5'), 'allowed');
  assert.equal(verdict('192.168.1.7'), 'allowed');
  assert.equal(verdict('192.168.1.8'), 'ip_not_allowed');
  assert.equal(verdict('2001:db9::1'), 'ip_not_allowed');
  assert.equal(verdict(undefined), 'ip_not_allowed');
});

test('shadow mode lets refused calls through uncharged and says what it would have refused', () => {
  const gate = new PolicyEngine(policy({ shadowMode: true }));
  const broke = keyRecord({ credits: 0 });
  const decision = evaluate(gate, caller(broke), { tool: 'echo', argBytes: 0 }, NOW);
  assert.ok(decision.allAllowed);
  assert.equal(decision.totalCredits, 0);
  assert.equal(decision.shadowDenial?.reason, 'insufficient_credits');
  const paying = keyRecord({ credits: 5 });
  const charged = evaluate(gate, caller(paying), { tool: 'echo', argBytes: 0 }, NOW);
  assert.ok(charged.allAllowed && charged.totalCredits === 1 && charged.shadowDenial === undefined);
});

test('a batch is admitted whole or not at all, and names the first call that fails', () => {
  const gate = new PolicyEngine(policy({ toolPricing: { big: { creditsPerCall: 5 } } }));
  const record = keyRecord({ credits: 7, deniedTools: ['secret'] });
  const ok = gate.evaluateBatch(caller(record), [{ tool: 'echo', argBytes: 0 }, { tool: 'big', argBytes: 0 }], NOW);
  assert.ok(ok.allAllowed);
  assert.equal(ok.totalCredits, 6);
  const denied = gate.evaluateBatch(caller(record), [{ tool: 'echo', argBytes: 0 }, { tool: 'secret', argBytes: 0 }], NOW);
  assert.ok(!denied.allAllowed && denied.failedIndex === 1 && denied.reason === 'tool_denied');
  const tooDear = gate.evaluateBatch(caller(record), [{ tool: 'big', argBytes: 0 }, { tool: 'echo', argBytes: 0 }, { tool: 'echo', argBytes: 0 }, { tool: 'echo', argBytes: 0 }], NOW);
  assert.ok(!tooDear.allAllowed && tooDear.failedIndex === 3 && tooDear.reason === 'insufficient_credits');
  assert.equal(tooDear.totalCredits, 8);
});

test('each call in a batch counts against the rate limit', () => {
  const gate = new PolicyEngine(policy({ globalRateLimitPerMin: 5 }));
  const record = keyRecord();
  const calls = Array.from({ length: 30 }, () => ({ tool: 'echo', argBytes: 0 }));
  const decision = gate.evaluateBatch(caller(record), calls, NOW);
  assert.ok(!decision.allAllowed && decision.failedIndex === 5 && decision.reason === 'rate_limited');
});

test('deciding changes nothing; only consume records rate-limit use', () => {
  const gate = new PolicyEngine(policy({ globalRateLimitPerMin: 1 }));
  const record = keyRecord();
  for (let i = 0; i < 3; i++) assert.ok(evaluate(gate, caller(record), { tool: 'echo', argBytes: 0 }, NOW).allAllowed);
  assert.equal(record.credits, 100);
  const decision = evaluate(gate, caller(record), { tool: 'echo', argBytes: 0 }, NOW);
  assert.ok(decision.allAllowed);
  gate.consume(decision.buckets);
  assert.equal(reason(evaluate(gate, caller(record), { tool: 'echo', argBytes: 0 }, NOW)), 'rate_limited');
});
