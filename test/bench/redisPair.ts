/**
 * Two gates in Redis mode behind a round-robin client against one such gate, interleaved round by
 * round as the harness's suite.mjs runs its targets (and with its own load scenarios, so figures
 * compare with the suite's). The client sends each call to the next gate in turn; each gate has
 * its own MCP session, since a session lives in the process that opened it. Both gates serve one
 * key through one Redis. Uses the harness in ../shared/bench (or $PAYGATE_BENCH_HARNESS).
 *
 *   node test/bench/redisPair.ts --redis-url <url> [--harness <dir>] [--rounds 5] [-n 20000] [--n1 3000] [-c 16] [--batch 10]
 *
 * Prints one JSON line last: { summary: { one, two }, runs: { one, two } } in the suite's shape.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'redis-url': { type: 'string' },
    harness: { type: 'string', default: process.env.PAYGATE_BENCH_HARNESS ?? path.resolve(import.meta.dirname, '..', '..', '..', 'shared', 'bench') },
    rounds: { type: 'string', default: '5' },
    n: { type: 'string', short: 'n', default: '20000' },
    n1: { type: 'string', default: '3000' },
    c: { type: 'string', short: 'c', default: '16' },
    batch: { type: 'string', default: '10' },
  },
});
if (!values['redis-url']) {
  process.stderr.write('--redis-url is required: the Redis server both gates share\n');
  process.exit(2);
}
const lib = await import(pathToFileURL(path.join(values.harness, 'lib.mjs')).href);
const scenarios = await import(pathToFileURL(path.join(values.harness, 'scenarios.mjs')).href);

const rounds = Number(values.rounds);
const n = Number(values.n);
const n1 = Number(values.n1);
const c = Number(values.c);
const batch = Number(values.batch);
const GATE = `{node} dist/cli.js wrap --server '{node} {echo}' --port {port} --admin-key {admin} --rate-limit 0 --redis-url ${values['redis-url']}`;

interface Reply {
  status: number;
  json: unknown;
  text: string;
}
interface Client {
  request(method: string, urlPath: string, options: { headers?: Record<string, string>; body?: unknown }): Promise<Reply>;
  close(): void;
}
interface Gate {
  client: Client;
  createKey(body: unknown): Promise<{ key: string }>;
  stop(): Promise<unknown>;
}
interface Connected {
  client: Client;
  headers: Record<string, string>;
}

/** Sends each request to the next gate in turn, with that gate's session headers. */
function roundRobin(targets: readonly Connected[]): Connected {
  let next = 0;
  return {
    headers: {},
    client: {
      request(method, urlPath, options) {
        const target = targets[next++ % targets.length]!;
        return target.client.request(method, urlPath, { ...options, headers: target.headers });
      },
      close() {},
    },
  };
}

const started: Gate[] = [];
async function startGate(): Promise<Gate> {
  const gate: Gate = await lib.startGate({ template: GATE, maxSockets: Math.max(64, c) });
  started.push(gate);
  return gate;
}

try {
  const single = await startGate();
  const pair = [await startGate(), await startGate()];
  const connect = async (gate: Gate, key: string): Promise<Connected> => ({ client: gate.client, headers: (await lib.mcpConnect(gate.client, key)).headers });
  const oneKey = (await single.createKey({ name: 'bench-one', credits: scenarios.BENCH_CREDITS })).key;
  const twoKey = (await pair[0]!.createKey({ name: 'bench-two', credits: scenarios.BENCH_CREDITS })).key;
  const targets = [
    { name: 'one', connected: await connect(single, oneKey) },
    { name: 'two', connected: roundRobin([await connect(pair[0]!, twoKey), await connect(pair[1]!, twoKey)]) },
  ];
  const plan = [
    { id: 'single c=1', n: n1, c: 1, batch: 0 },
    { id: `single c=${c}`, n, c, batch: 0 },
    ...(batch > 0 ? [{ id: `batch${batch} c=${c}`, n: n * 2, c, batch }] : []),
  ];
  const runs: Record<string, Record<string, unknown[]>> = {};
  for (let round = 0; round < rounds; round++) {
    for (const scenario of plan) {
      for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
        const result = await scenarios.runGate(target.connected, { n: scenario.n, c: scenario.c, batch: scenario.batch, tool: 'echo', args: {}, warmup: round === 0 ? 1000 : 200, maxSeconds: 60 });
        ((runs[target.name] ??= {})[scenario.id] ??= []).push(result);
        process.stderr.write(`round ${round + 1} redis ${target.name.padEnd(4)} ${scenario.id.padEnd(14)} ${String(result.callsPerSec).padStart(9)} calls/s  p50 ${result.latencyMs.p50} ms  p99 ${result.latencyMs.p99} ms  err ${result.errors}\n`);
      }
    }
  }
  const summary: Record<string, Record<string, unknown>> = {};
  for (const target of targets) for (const scenario of plan) (summary[target.name] ??= {})[scenario.id] = scenarios.medianOf(runs[target.name]![scenario.id]);
  console.log(JSON.stringify({ harness: 'redis-pair', rounds, n, n1, c, batch, summary, runs }));
} finally {
  for (const gate of started) await gate.stop();
}
