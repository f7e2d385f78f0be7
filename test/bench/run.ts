/**
 * `npm run bench`: the gate against the null bridge and the direct stdio floor (one interleaved
 * suite run, single calls and batches of 10, with a gate in Redis mode in the same run), two
 * Redis-mode gates behind a round-robin client against one, Redis commands per call, per-call
 * latency as stored keys grow, start-up time and memory with 100,000 keys, the admission time of a 100-call batch, the editor's diagnostics
 * latency and validate's wall time on a 5,000-tool config, and hot reload under full load.
 * Uses the black-box harness in ../shared/bench (or $PAYGATE_BENCH_HARNESS). Prints a Markdown
 * summary for the README and writes every raw result to test-results/.
 *
 *   npm run bench [-- --quick]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startBenchRedis } from './redisServer.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const HARNESS = process.env.PAYGATE_BENCH_HARNESS ?? path.resolve(ROOT, '..', 'shared', 'bench');
const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick;

if (!fs.existsSync(path.join(HARNESS, 'suite.mjs'))) {
  process.stderr.write(`the benchmark harness is not at ${HARNESS}; set PAYGATE_BENCH_HARNESS to the folder holding suite.mjs\n`);
  process.exit(2);
}

const GATE = "{node} dist/cli.js wrap --server '{node} {echo}' --port {port} --admin-key {admin} --rate-limit 0 --state-file {state}";
const NULL = `{node} ${path.join(HARNESS, 'null-gate.mjs')} --server '{node} {echo}' --port {port} --admin-key {admin}`;
/** One redis-server for the Redis-mode gates: the suite's gate on database 0, the pair benchmark's on database 1. */
const redis = await startBenchRedis();
const REDIS_GATE = `{node} dist/cli.js wrap --server '{node} {echo}' --port {port} --admin-key {admin} --rate-limit 0 --redis-url ${redis.url(0)}`;

/** Runs a node script and returns the JSON object on the last line of its stdout. */
function runJson(script: string, args: string[]): Promise<any> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) reject(new Error(`${path.basename(script)} exited with ${code}`));
      else resolve(JSON.parse(last));
    });
  });
}

const load = ['--rounds', quick ? '2' : '5', '-n', quick ? '4000' : '20000', '--n1', quick ? '1000' : '3000', '-c', '16', '--batch', '10'];
let suite: any;
let pair: any;
try {
  suite = await runJson(path.join(HARNESS, 'suite.mjs'), ['--gate', `paygate=${GATE}`, '--gate', `null=${NULL}`, '--gate', `redis=${REDIS_GATE}`, ...load]);
  pair = await runJson(path.join(ROOT, 'test', 'bench', 'redisPair.ts'), ['--redis-url', redis.url(1), '--harness', HARNESS, ...load]);
} finally {
  await redis.stop();
}
const roundTrips = await runJson(path.join(ROOT, 'test', 'bench', 'redisRoundTrips.ts'), quick ? ['--calls', '500', '--batches', '100'] : ['--calls', '3000', '--batches', '500']);
const scale = await runJson(path.join(HARNESS, 'scale-probe.mjs'), [
  '--gate', GATE, '--sizes', quick ? '1,10000' : '1,1000,100000', '--rounds', quick ? '1' : '3', '-n', '300', '--conc', '1,8',
]);
const startup = await runJson(path.join(ROOT, 'test', 'bench', 'startup.ts'), ['--keys', quick ? '10000' : '100000']);
const admission = await runJson(path.join(ROOT, 'test', 'bench', 'evaluateBatch.ts'), ['--calls', '100']);
const editor = await runJson(path.join(ROOT, 'test', 'bench', 'lspLatency.ts'), ['--tools', '5000', '--edits', quick ? '60' : '200']);
const reload = await runJson(path.join(ROOT, 'test', 'bench', 'reloadUnderLoad.ts'), ['--seconds', quick ? '3' : '5']);
const usage = await runJson(path.join(ROOT, 'test', 'bench', 'usageLatency.ts'), ['--calls', quick ? '50' : '200']);

const s = suite.summary;
const ratio = (a: number, b: number) => (a / b).toFixed(2);

interface RoundResult {
  callsPerSec: number;
  latencyMs: { p50: number; p99: number };
}

/**
 * `ours` / `theirs` (paygate / null bridge unless told) in each round, lowest to highest. The suite
 * runs the targets side by side round after round, so each round's pair met the same machine; the
 * spread shows how far one ratio can move.
 */
function perRound(scenario: string, figure: (result: RoundResult) => number, ours = 'paygate', theirs = 'null', run = suite): string {
  const mine: RoundResult[] = run.runs[ours][scenario];
  const other: RoundResult[] = run.runs[theirs][scenario];
  const ratios = mine.map((result, round) => figure(result) / figure(other[round]!)).sort((a, b) => a - b);
  return `${ratios[0]!.toFixed(2)}–${ratios.at(-1)!.toFixed(2)}×`;
}
/** A row of the Redis table: each target's figure, then the ratios asked for, each with its spread over rounds. */
function redisRow(label: string, scenario: string, figure: (result: RoundResult) => number, median: (summary: any) => number): string {
  const compared = (run: any, ours: string, theirs: string) =>
    `${ratio(median(run.summary[ours]), median(run.summary[theirs]))}× (${perRound(scenario, figure, ours, theirs, run)})`;
  return (
    `| ${label} | ${median(s.redis)} | ${median(s.paygate)} | ${median(s.null)} | ${compared(suite, 'redis', 'paygate')} | ${compared(suite, 'redis', 'null')} ` +
    `| ${median(pair.summary.one)} | ${median(pair.summary.two)} | ${compared(pair, 'two', 'one')} |`
  );
}
const callsPerSec = (result: RoundResult) => result.callsPerSec;

const sizes: number[] = scale.sizes;
const first = scale.summary.state[sizes[0]!];
const last = scale.summary.state[sizes.at(-1)!];
const cpu = os.cpus();
const lines = [
  `Machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`,
  '',
  '| scenario | paygate | null bridge | direct stdio | paygate / null | per round |',
  '|---|---|---|---|---|---|',
  `| tools/call, c=16, calls/s | ${s.paygate['single c=16'].callsPerSec} | ${s.null['single c=16'].callsPerSec} | ${s.direct['single c=16'].callsPerSec} | ${ratio(s.paygate['single c=16'].callsPerSec, s.null['single c=16'].callsPerSec)}× | ${perRound('single c=16', callsPerSec)} |`,
  `| tools/call, c=1, p50 ms | ${s.paygate['single c=1'].p50} | ${s.null['single c=1'].p50} | ${s.direct['single c=1'].p50} | ${ratio(s.paygate['single c=1'].p50, s.null['single c=1'].p50)}× | ${perRound('single c=1', (result) => result.latencyMs.p50)} |`,
  `| tools/call, c=16, p99 ms | ${s.paygate['single c=16'].p99} | ${s.null['single c=16'].p99} | ${s.direct['single c=16'].p99} | ${ratio(s.paygate['single c=16'].p99, s.null['single c=16'].p99)}× | ${perRound('single c=16', (result) => result.latencyMs.p99)} |`,
  `| tools/call_batch of 10, c=16, calls/s | ${s.paygate['batch10 c=16'].callsPerSec} | ${s.null['batch10 c=16'].callsPerSec} | ${s.direct['batch10 c=16'].callsPerSec} | ${ratio(s.paygate['batch10 c=16'].callsPerSec, s.null['batch10 c=16'].callsPerSec)}× | ${perRound('batch10 c=16', callsPerSec)} |`,
  '',
  `Batch of 10 against single calls, paygate: ${ratio(s.paygate['batch10 c=16'].callsPerSec, s.paygate['single c=16'].callsPerSec)}× the calls per second. ` +
    `Admission of a ${admission.calls}-call batch (evaluateBatch, every rule on): ${admission.medianUs} µs median, ${admission.p99Us} µs p99.`,
  '',
  'Redis mode, one redis-server on this machine (AOF synced every second). Left: a Redis-mode gate in the suite run above; right: one',
  'Redis-mode gate against two behind a round-robin client, interleaved in a run of their own. In parentheses: the spread over rounds.',
  '',
  '| scenario | redis | paygate (SQLite) | null bridge | redis / SQLite | redis / null | one redis gate | two, round robin | two / one |',
  '|---|---|---|---|---|---|---|---|---|',
  redisRow('tools/call, c=16, calls/s', 'single c=16', callsPerSec, (target) => target['single c=16'].callsPerSec),
  redisRow('tools/call, c=1, p50 ms', 'single c=1', (result) => result.latencyMs.p50, (target) => target['single c=1'].p50),
  redisRow('tools/call, c=16, p99 ms', 'single c=16', (result) => result.latencyMs.p99, (target) => target['single c=16'].p99),
  redisRow('tools/call_batch of 10, c=16, calls/s', 'batch10 c=16', callsPerSec, (target) => target['batch10 c=16'].callsPerSec),
  '',
  `Redis round trips (commands the gate sent, lease renewals included): ${roundTrips.single.perCall} per single call, ` +
    `${roundTrips.batch.perBatch} per batch of ${roundTrips.batch.batchSize}, at concurrency ${roundTrips.concurrency}; ` +
    `INFO commandstats, which also counts the commands scripts run inside Redis: ${roundTrips.single.commandstatsPerRequest} per call, ${roundTrips.batch.commandstatsPerRequest} per batch.`,
  '',
  `| stored keys | ${sizes.join(' | ')} |`,
  `|---|${sizes.map(() => '---').join('|')}|`,
  `| p50 at c=1, ms | ${sizes.map((size) => scale.summary.state[size].c1.p50).join(' | ')} |`,
  `| POST /keys p50, ms | ${sizes.map((size) => scale.summary.state[size].adminCreateP50).join(' | ')} |`,
  '',
  `p50 with ${last.S} keys / p50 with ${first.S}: ${ratio(last.c1.p50, first.c1.p50)}×. ` +
    `Start-up with ${startup.keys} keys: ${startup.startMedianMs} ms; resident memory after ${'2000'} calls: ${startup.rssMiB} MiB.`,
  '',
  `Config with ${editor.tools} priced tools: didChange → publishDiagnostics, whole document p50 ${editor.fullDocumentChangeToDiagnosticsMs.p50} ms, p95 ${editor.fullDocumentChangeToDiagnosticsMs.p95} ms; ` +
    `one-character range p50 ${editor.incrementalChangeToDiagnosticsMs.p50} ms, p95 ${editor.incrementalChangeToDiagnosticsMs.p95} ms; ` +
    `paygate-mcp validate ${editor.validateWallMs.median} ms (whole process). ` +
    `Hot reload at full speed: ${reload.answered} calls during ${reload.reloads} reloads, ${reload.failed} failed, ${reload.lostCharges} lost charges.`,
  '',
  `Editor: a tool call's answer to the daemon's paygate/usageChanged that counts it: p50 ${usage.answerToSnapshotMs.p50} ms, p95 ${usage.answerToSnapshotMs.p95} ms.`,
];
const resultsFile = path.join(ROOT, 'test-results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
fs.mkdirSync(path.dirname(resultsFile), { recursive: true });
fs.writeFileSync(resultsFile, `${JSON.stringify({ suite, pair, roundTrips, scale, startup, admission, editor, reload, usage }, null, 2)}\n`);
process.stdout.write(`\n${lines.join('\n')}\n\nEvery run's figures: ${path.relative(ROOT, resultsFile)}\n`);
