/**
 * `npm run bench`: the gate against the null bridge and the direct stdio floor (one interleaved
 * suite run, single calls and batches of 10), per-call latency as stored keys grow, start-up time
 * and memory with 100,000 keys, the admission time of a 100-call batch, the editor's diagnostics
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

const suite = await runJson(path.join(HARNESS, 'suite.mjs'), [
  '--gate', `paygate=${GATE}`, '--gate', `null=${NULL}`,
  '--rounds', quick ? '2' : '5', '-n', quick ? '4000' : '20000', '--n1', quick ? '1000' : '3000', '-c', '16', '--batch', '10',
]);
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
 * paygate / null bridge in each round, lowest to highest. The suite runs the two side by side round
 * after round, so each round's pair met the same machine; the spread shows how far one ratio can move.
 */
function perRound(scenario: string, figure: (result: RoundResult) => number): string {
  const ours: RoundResult[] = suite.runs.paygate[scenario];
  const theirs: RoundResult[] = suite.runs.null[scenario];
  const ratios = ours.map((result, round) => figure(result) / figure(theirs[round]!)).sort((a, b) => a - b);
  return `${ratios[0]!.toFixed(2)}–${ratios.at(-1)!.toFixed(2)}×`;
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
fs.writeFileSync(resultsFile, `${JSON.stringify({ suite, scale, startup, admission, editor, reload, usage }, null, 2)}\n`);
process.stdout.write(`\n${lines.join('\n')}\n\nEvery run's figures: ${path.relative(ROOT, resultsFile)}\n`);
