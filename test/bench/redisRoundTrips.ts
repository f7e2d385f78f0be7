/**
 * Redis round trips per tool call of one gate in Redis mode: the commands the gate sent while the
 * calls were made (its lease renewals included), divided by the calls, measured apart for single
 * `tools/call`s and for `tools/call_batch`es after a warm-up that lets the gate learn the key. The
 * issue's target: at most 2 per single call and at most 2 per batch. Sent commands are counted
 * with MONITOR; `INFO commandstats` cannot tell them from the commands a script runs inside Redis
 * (it counts each `redis.call` under its own name), so its total, which includes those, is given
 * beside them.
 *
 *   node test/bench/redisRoundTrips.ts [--calls 2000] [--batches 300] [--batch 10] [-c 8]
 *
 * Prints one JSON line last.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { countCommands } from '../helpers/redisCommands.ts';
import { ROOT, spawnGate } from './gateProcess.ts';
import { startBenchRedis } from './redisServer.ts';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '2000' },
    batches: { type: 'string', default: '300' },
    batch: { type: 'string', default: '10' },
    c: { type: 'string', short: 'c', default: '8' },
  },
});
const calls = Number(values.calls);
const batches = Number(values.batches);
const batchSize = Number(values.batch);
const concurrency = Number(values.c);
const ADMIN_KEY = 'admin_bench_0123456789abcdef';
const NOT_COUNTED = new Set(['info', 'config', 'monitor', 'echo']);

const redis = await startBenchRedis();
const client = new Redis(redis.url());
const gate = await spawnGate(['wrap', '--server', `"${process.execPath}" "${path.join(ROOT, 'dist', 'example-server.js')}"`, '--port', '0', '--admin-key', ADMIN_KEY, '--rate-limit', '0', '--redis-url', redis.url()], {
  captureStderr: true,
});

try {
  const created = await fetch(`${gate.base}/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-admin-key': ADMIN_KEY },
    body: JSON.stringify({ name: 'round-trips', credits: 10 * (calls + batches * batchSize) + 1000 }),
  });
  if (created.status !== 201) throw new Error(`POST /keys failed: ${created.status} ${await created.text()}`);
  const { key } = (await created.json()) as { key: string };

  let nextId = 1;
  async function post(method: string, params: unknown): Promise<void> {
    const response = await fetch(`${gate.base}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-api-key': key },
      body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
    });
    const text = await response.text();
    if (!response.ok || text.includes('"error"')) throw new Error(`${method} failed: ${response.status} ${text.slice(0, 300)}`);
  }
  const single = () => post('tools/call', { name: 'echo', arguments: { text: 'hi' } });
  const batch = () => post('tools/call_batch', { calls: Array.from({ length: batchSize }, () => ({ name: 'echo', arguments: { text: 'hi' } })) });

  /** Runs `total` requests, `concurrency` at a time. */
  async function run(total: number, request: () => Promise<void>): Promise<void> {
    let started = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, total) }, async () => {
        while (started++ < total) await request();
      }),
    );
  }

  /** Commands Redis ran since the last reset (scripts' inner ones included), by name, the measuring ones left out. */
  async function commandstats(): Promise<Record<string, number>> {
    const stats = await client.info('commandstats');
    const byName: Record<string, number> = {};
    for (const [, name, count] of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (!NOT_COUNTED.has(name!.split('|')[0]!)) byName[name!] = Number(count);
    return byName;
  }
  const total = (byName: Record<string, number>) => Object.values(byName).reduce((sum, count) => sum + count, 0);

  const round = (value: number) => Math.round(value * 100) / 100;
  /** `requests` requests: the commands sent, and commandstats' total (scripts' inner commands included), per request. */
  async function measure(requests: number, request: () => Promise<void>) {
    await client.config('RESETSTAT');
    const sent = await countCommands(redis.url(), () => run(requests, request));
    const stats = await commandstats();
    return { requests, sent: sent.sent, perRequest: round(sent.sent / requests), sentByName: sent.sentByName, commandstatsPerRequest: round(total(stats) / requests), commandstats: stats };
  }

  await run(100, single);
  await run(20, batch);
  const singles = await measure(calls, single);
  const batched = await measure(batches, batch);
  const result = {
    harness: 'redis-round-trips',
    concurrency,
    single: { ...singles, perCall: singles.perRequest },
    batch: { ...batched, batchSize, perBatch: batched.perRequest, perCall: round(batched.sent / (batches * batchSize)) },
  };
  process.stderr.write(
    `Redis round trips: ${result.single.perCall} per single call (${calls} calls), ${result.batch.perBatch} per batch of ${batchSize} (${batches} batches); ` +
      `commandstats with scripts' inner commands: ${singles.commandstatsPerRequest} and ${batched.commandstatsPerRequest}\n`,
  );
  console.log(JSON.stringify(result));
} finally {
  client.disconnect();
  await gate.stop();
  await redis.stop();
}
