/**
 * `npm run bench:soak`: months of traffic in minutes. Seeds a state file with stored usage events,
 * starts a gate on it, then sends tools/call from 16 clients together with keyless refusals carrying
 * random tool names, and checks that the gate stays flat:
 *
 * - resident memory at the end ≤ 1.1 × after the first 100,000 calls;
 * - tools/call p50 over the last 100,000 calls ≤ 1.05 × the p50 over the first 100,000 (after warm-up);
 * - `GET /status` p99 ≤ 20 ms with every event stored (seeded + made by the run, 5,000,000 by default).
 *
 *   node test/bench/soak.ts [--calls 2000000] [--clients 16] [--refusals 200000] [--seed-events 3000000]
 *
 * Not part of `npm test`: it takes a few minutes. Traffic goes to 127.0.0.1 only; every loop is
 * bounded by a count and by `--max-seconds`. Prints one JSON line last; exits 1 if a target is missed.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { openLedger, openStateFile } from '../../server/src/store/open.ts';
import type { UsageEvent } from '../../server/src/store/types.ts';
import { ROOT, spawnGate, type BenchGate } from './gateProcess.ts';

const BACKEND = path.join(ROOT, 'test', 'fixtures', 'backend.ts');
const ADMIN = 'admin_soak_0123456789abcdef';
const WINDOW = 100_000;
/** How the gate is run: with the young generation `npm start` and the editor give it (see README, "Memory"). */
const GATE_NODE_OPTIONS = (process.env.SOAK_GATE_NODE_OPTIONS ?? '--max-semi-space-size=16').split(' ').filter(Boolean);

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '2000000' },
    clients: { type: 'string', default: '16' },
    refusals: { type: 'string', default: '200000' },
    'seed-events': { type: 'string', default: '3000000' },
    'status-samples': { type: 'string', default: '200' },
    'max-seconds': { type: 'string', default: '1200' },
  },
});
const calls = Number(values.calls);
const clients = Number(values.clients);
const refusals = Number(values.refusals);
const seedEvents = Number(values['seed-events']);
const statusSamples = Number(values['status-samples']);
const deadline = Date.now() + Number(values['max-seconds']) * 1000;
if (calls < 2 * WINDOW) throw new Error(`--calls must be at least ${2 * WINDOW}: the first and last ${WINDOW} calls are compared`);

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

function residentKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

/** Fills the state with `count` charged events of one earlier key, as a gate would have stored them. */
function seed(stateFile: string, count: number): void {
  const state = openStateFile(stateFile);
  const ledger = openLedger(state);
  const store = state.store;
  let id = store.nextEventId();
  const started = Date.now() - 365 * 86_400_000;
  const step = (365 * 86_400_000) / Math.max(1, count);
  const chunk = 100_000;
  for (let done = 0; done < count; done += chunk) {
    const inserts: UsageEvent[] = [];
    for (let i = done; i < Math.min(count, done + chunk); i++) {
      inserts.push({ id: id++, at: Math.floor(started + i * step), keyId: null, keyPrefix: 'pg_seed…', keyName: 'seed', namespace: 'default', tool: 'echo', credits: 1, status: 'charged', reason: null });
    }
    store.transaction(() => store.commit({ balances: [], inserts, toolStats: { stats: { echo: { calls: done + inserts.length, credits: done + inserts.length, denied: 0 } }, throughEventId: id - 1 } }));
  }
  ledger.close();
}

function startGate(stateFile: string): Promise<BenchGate> {
  const args = ['wrap', '--server', `"${process.execPath}" "${BACKEND}"`, '--port', '0', '--state-file', stateFile, '--admin-key', ADMIN, '--rate-limit', '0', '--refused-limit', '0'];
  return spawnGate(args, { nodeOptions: GATE_NODE_OPTIONS });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: clients + 4 });

function post(port: number, pathName: string, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function get(port: number, pathName: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: pathName, agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    }).on('error', reject);
  });
}

const TOOL_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.';
function randomToolName(): string {
  const bytes = randomBytes(8 + (randomBytes(1)[0]! % 40));
  let name = '';
  for (const byte of bytes) name += TOOL_ALPHABET[byte % TOOL_ALPHABET.length];
  return name;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygate-soak-'));
const stateFile = path.join(dir, 'state.db');
let gate: BenchGate | undefined;
try {
  log(`seeding ${seedEvents} events`);
  seed(stateFile, seedEvents);
  gate = await startGate(stateFile);
  const { port, pid } = gate;
  const created = await post(port, '/keys', { 'x-admin-key': ADMIN }, JSON.stringify({ name: 'soak', credits: calls * 2 }));
  if (created.status !== 201) throw new Error(`creating the key failed: ${created.status} ${created.text}`);
  const key = String(JSON.parse(created.text).key);

  const first = new Float64Array(WINDOW);
  const last = new Float64Array(WINDOW);
  let started = 0;
  let finished = 0;
  let failures = 0;
  let refused = 0;
  let rssAfterFirstWindow = NaN;
  const refusalEvery = Math.max(1, Math.floor(calls / Math.max(1, refusals)));
  const began = performance.now();

  const callWorker = async () => {
    while (started < calls && Date.now() < deadline) {
      const index = started++;
      const body = `{"jsonrpc":"2.0","id":${index},"method":"tools/call","params":{"name":"echo","arguments":{"text":"soak"}}}`;
      const t0 = performance.now();
      const answer = await post(port, '/mcp', { 'x-api-key': key, accept: 'application/json, text/event-stream' }, body);
      const ms = performance.now() - t0;
      if (answer.status !== 200 || !answer.text.includes('"result"')) failures++;
      const done = finished++;
      if (done < WINDOW) first[done] = ms;
      else if (done >= calls - WINDOW) last[done - (calls - WINDOW)] = ms;
      if (done + 1 === WINDOW) rssAfterFirstWindow = residentKiB(pid);
      if (done % 200_000 === 0 && done > 0) log(`${done} calls, ${Math.round(done / ((performance.now() - began) / 1000))} calls/s, RSS ${Math.round(residentKiB(pid) / 1024)} MiB`);
    }
  };
  const refusalWorker = async () => {
    while (refused < refusals && Date.now() < deadline) {
      // Spread over the run: one refusal for every `refusalEvery` calls started.
      if (refused * refusalEvery > started && started < calls) {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      refused++;
      const body = JSON.stringify({ jsonrpc: '2.0', id: refused, method: 'tools/call', params: { name: randomToolName(), arguments: {} } });
      const answer = await post(port, '/mcp', { accept: 'application/json, text/event-stream' }, body);
      if (answer.status !== 401) failures++;
    }
  };
  await Promise.all([...Array.from({ length: clients }, callWorker), refusalWorker()]);
  const seconds = (performance.now() - began) / 1000;
  const rssEnd = residentKiB(pid);
  if (finished < calls) throw new Error(`only ${finished} of ${calls} calls finished within --max-seconds`);

  const statusMs = new Float64Array(statusSamples);
  for (let i = 0; i < statusSamples; i++) {
    const t0 = performance.now();
    const status = await get(port, '/status', { 'x-admin-key': ADMIN });
    statusMs[i] = performance.now() - t0;
    if (status.status !== 200) throw new Error(`GET /status answered ${status.status}: ${status.text}`);
  }
  await gate.stop();
  gate = undefined;
  const db = new DatabaseSync(stateFile, { readOnly: true });
  const eventsStored = Number((db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n);
  const toolRows = (db.prepare('SELECT tool FROM tool_stats ORDER BY tool').all() as { tool: string }[]).map((row) => row.tool);
  db.close();

  first.sort();
  last.sort();
  statusMs.sort();
  const p50First = quantile(first, 0.5);
  const p50Last = quantile(last, 0.5);
  const result = {
    harness: 'soak',
    calls,
    clients,
    refusals: refused,
    failures,
    seconds: Math.round(seconds),
    callsPerSecond: Math.round(calls / seconds),
    eventsStored,
    toolStatsRows: toolRows,
    rssMiB: { afterFirst100k: Math.round(rssAfterFirstWindow / 102.4) / 10, end: Math.round(rssEnd / 102.4) / 10, ratio: Math.round((rssEnd / rssAfterFirstWindow) * 100) / 100 },
    callP50Ms: { first100k: Math.round(p50First * 1000) / 1000, last100k: Math.round(p50Last * 1000) / 1000, ratio: Math.round((p50Last / p50First) * 100) / 100 },
    statusMs: { p50: Math.round(quantile(statusMs, 0.5) * 100) / 100, p99: Math.round(quantile(statusMs, 0.99) * 100) / 100 },
  };
  const targets = {
    rss: result.rssMiB.ratio <= 1.1,
    p50: result.callP50Ms.ratio <= 1.05,
    status: result.statusMs.p99 <= 20 && eventsStored >= 5_000_000,
    noFailures: failures === 0,
    // Keyless refusals are counted in memory only: no event, no per-tool row of their random names.
    refusalsLeftNoRows: eventsStored === seedEvents + calls && toolRows.every((tool) => tool === 'echo'),
  };
  log(
    `${calls} calls + ${refused} keyless refusals in ${result.seconds} s (${result.callsPerSecond} calls/s), ${failures} failures; ` +
      `RSS ${result.rssMiB.afterFirst100k} → ${result.rssMiB.end} MiB (${result.rssMiB.ratio}×); ` +
      `p50 ${result.callP50Ms.first100k} → ${result.callP50Ms.last100k} ms (${result.callP50Ms.ratio}×); ` +
      `GET /status p50 ${result.statusMs.p50} ms, p99 ${result.statusMs.p99} ms with ${eventsStored} events; per-tool rows: ${toolRows.join(', ')}`,
  );
  console.log(JSON.stringify({ ...result, targets }));
  if (!Object.values(targets).every(Boolean)) process.exitCode = 1;
} finally {
  await gate?.stop();
  agent.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
}
