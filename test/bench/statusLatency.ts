/**
 * `GET /status` (and `/namespaces`, `GET /keys?limit=` with its X-Total-Count) on a real gate whose
 * state holds millions of usage events: their cost must not grow with the events stored.
 *
 *   npm run build && node test/bench/statusLatency.ts [--events 5000000] [--keys 1000] [--requests 500]
 *
 * Seeds a fresh state file through the store (big transactions of plain inserts), starts
 * `paygate-mcp wrap` on it, makes a tool call or two per report so that each report also applies
 * fresh writes, and times the reports one at a time. Prints one JSON line last.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { emptyUsage } from '../../server/src/gate/quota.ts';
import { displayPrefix, generateApiKey, hashApiKey } from '../../server/src/keys/apiKey.ts';
import { SqliteStore } from '../../server/src/store/sqlite.ts';
import type { ToolStats, UsageEvent } from '../../server/src/store/types.ts';
import { ROOT, spawnGate } from './gateProcess.ts';

const ADMIN_KEY = 'admin_bench_0123456789abcdef';
const { values } = parseArgs({
  options: { events: { type: 'string', default: '5000000' }, keys: { type: 'string', default: '1000' }, requests: { type: 'string', default: '500' } },
});
const eventCount = Number(values.events);
const keyCount = Number(values.keys);
const requests = Number(values.requests);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygate-status-bench-'));
const stateFile = path.join(dir, 'state.db');

/** Keys in three namespaces, and events spread over them and over the last 90 days, a tenth of them denied. */
function seed(): string {
  const seedStarted = performance.now();
  const store = new SqliteStore(stateFile);
  const now = Date.now();
  const benchKey = generateApiKey();
  const ids: number[] = [];
  store.transaction(() => {
    for (let i = 0; i < keyCount; i++) {
      const key = i === 0 ? benchKey : generateApiKey();
      const record = store.insertKey({
        keyHash: hashApiKey(key), keyPrefix: displayPrefix(key), name: `key ${i}`, namespace: ['default', 'acme', 'globex'][i % 3]!,
        credits: 1_000_000_000, totalSpent: 0, totalCalls: 0, createdAt: now, lastUsedAt: null, active: true, spendingLimit: 0,
        allowedTools: [], deniedTools: [], expiresAt: null, tags: {}, ipAllowlist: [], quota: null, usage: emptyUsage(now),
      });
      ids.push(record.id);
    }
  });
  const PER_TRANSACTION = 100_000;
  const span = 90 * 86_400_000;
  for (let first = 1; first <= eventCount; first += PER_TRANSACTION) {
    const inserts: UsageEvent[] = [];
    for (let id = first; id < Math.min(first + PER_TRANSACTION, eventCount + 1); id++) {
      const keyId = ids[id % ids.length]!;
      const denied = id % 10 === 0;
      inserts.push({
        id, at: now - span + Math.floor((id / eventCount) * span), keyId, keyPrefix: 'pg_seed', keyName: `key ${keyId}`,
        namespace: ['default', 'acme', 'globex'][(keyId - 1) % 3]!, tool: `tool-${id % 20}`, credits: denied ? 0 : 1,
        status: denied ? 'denied' : 'charged', reason: denied ? 'rate_limited' : null,
      });
    }
    store.commit({ balances: [], inserts });
  }
  // As a gate leaves it: per-tool totals saved through the last event (a start counts only what follows).
  const stats: Record<string, ToolStats> = {};
  for (let tool = 0; tool < 20; tool++) stats[`tool-${tool}`] = { calls: 0, credits: 0, denied: 0 };
  for (let id = 1; id <= eventCount; id++) {
    const tool = stats[`tool-${id % 20}`]!;
    if (id % 10 === 0) tool.denied++;
    else {
      tool.calls++;
      tool.credits++;
    }
  }
  store.commit({ balances: [], inserts: [], toolStats: { stats, throughEventId: eventCount } });
  store.close();
  process.stderr.write(`seeded ${eventCount} events and ${keyCount} keys in ${Math.round((performance.now() - seedStarted) / 1000)} s (${Math.round(fs.statSync(stateFile).size / 1e6)} MB)\n`);
  return benchKey;
}

const apiKey = seed();
const startedAt = performance.now();
const gate = await spawnGate(['wrap', '--server', `"${process.execPath}" "${path.join(ROOT, 'dist', 'example-server.js')}"`,
  '--port', '0', '--admin-key', ADMIN_KEY, '--rate-limit', '0', '--state-file', stateFile]);
const base = gate.base;
const startMs = Math.round(performance.now() - startedAt);

async function call(id: number): Promise<void> {
  const response = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } }),
  });
  await response.text();
}

async function timed(urlPath: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${base}${urlPath}`, { headers: { 'x-admin-key': ADMIN_KEY } });
  await response.text();
  if (!response.ok) throw new Error(`${urlPath} answered ${response.status}`);
  return performance.now() - started;
}

const paths = ['/status', '/namespaces', '/keys?limit=10'] as const;
const latencies = Object.fromEntries(paths.map((p) => [p, [] as number[]])) as Record<(typeof paths)[number], number[]>;
for (let i = 0; i < 20; i++) for (const p of paths) await timed(p);
for (let i = 0; i < requests; i++) {
  await call(i);
  for (const p of paths) latencies[p].push(await timed(p));
}
await gate.stop();
fs.rmSync(dir, { recursive: true, force: true });

const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]! * 100) / 100;
  return { p50: at(0.5), p99: at(0.99), max: at(1) };
};
const ms = Object.fromEntries(paths.map((p) => [p, summary(latencies[p])])) as Record<(typeof paths)[number], ReturnType<typeof summary>>;
const result = { harness: 'status-latency', events: eventCount, keys: keyCount, requests, gateStartMs: startMs, ms };
for (const p of paths) process.stderr.write(`GET ${p} with ${eventCount} events stored: p50 ${result.ms[p].p50} ms, p99 ${result.ms[p].p99} ms, max ${result.ms[p].max} ms\n`);
console.log(JSON.stringify(result));
