/**
 * Admission of a 100-call batch by the pure policy engine (no I/O): every rule switched on.
 *
 *   node test/bench/evaluateBatch.ts [--calls 100] [--iterations 20000]
 *
 * Prints one JSON line last: microseconds per evaluateBatch, median and p99 over blocks of 100.
 */
import { parseArgs } from 'node:util';
import { PolicyEngine } from '../../server/src/gate/policyEngine.ts';
import { emptyUsage } from '../../server/src/gate/quota.ts';
import type { KeyRecord } from '../../server/src/gate/types.ts';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '100' }, iterations: { type: 'string', default: '20000' } } });
const callCount = Number(values.calls);
const iterations = Number(values.iterations);

const tools = Array.from({ length: 20 }, (_, i) => `tool_${i}`);
const toolPricing = Object.fromEntries(tools.map((tool, i) => [tool, { creditsPerCall: 1 + (i % 5), ...(i % 4 === 0 ? { rateLimitPerMin: 1_000_000 } : {}), ...(i % 7 === 0 ? { creditsPerKbInput: 1 } : {}) }]));
const engine = new PolicyEngine({
  defaultCreditsPerCall: 1,
  toolPricing,
  globalRateLimitPerMin: 1_000_000,
  globalQuota: { dailyCallLimit: 1_000_000, monthlyCallLimit: 10_000_000, dailyCreditLimit: 10_000_000, monthlyCreditLimit: 100_000_000 },
  shadowMode: false,
});
const now = Date.now();
const record: KeyRecord = {
  id: 1, keyHash: 'h', keyPrefix: 'pg_', name: 'bench', namespace: 'default', credits: 1_000_000_000, totalSpent: 0, totalCalls: 0,
  createdAt: now, lastUsedAt: null, active: true, spendingLimit: 10_000_000_000, allowedTools: tools, deniedTools: ['tool_x'],
  expiresAt: now + 86_400_000, tags: {}, ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'], quota: null, usage: emptyUsage(now),
};
const caller = { record, presentedKey: true, clientIp: '127.0.0.1' };
const calls = Array.from({ length: callCount }, (_, i) => ({ tool: tools[i % tools.length]!, argBytes: 200 }));

for (let i = 0; i < 2000; i++) if (!engine.evaluateBatch(caller, calls, now).allAllowed) throw new Error('the benchmark batch must be admitted');
const blocks: number[] = [];
for (let done = 0; done < iterations; done += 100) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < 100; i++) engine.evaluateBatch(caller, calls, now);
  blocks.push(Number(process.hrtime.bigint() - start) / 1e3 / 100);
}
blocks.sort((a, b) => a - b);
const result = { harness: 'evaluateBatch', calls: callCount, iterations, medianUs: Math.round(blocks[blocks.length >> 1]! * 100) / 100, p99Us: Math.round(blocks[Math.floor(blocks.length * 0.99)]! * 100) / 100 };
process.stderr.write(`evaluateBatch of ${callCount} calls: ${result.medianUs} µs median, ${result.p99Us} µs p99\n`);
console.log(JSON.stringify(result));
