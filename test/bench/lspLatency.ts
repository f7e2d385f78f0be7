/**
 * Time from `didChange` to `publishDiagnostics` in the daemon, on a config with 5,000 priced tools,
 * and the wall time of `paygate-mcp validate` on the same file (the whole process).
 *
 *   node test/bench/lspLatency.ts [--tools 5000] [--edits 200]
 *
 * Each edit raises one tool's rate limit above the global one and back (so the check has a diagnostic
 * to place half of the time), sent two ways: as the whole document (what an editor without
 * incremental sync sends; the headline) and as a one-character range change. Prints one JSON line last.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  createProtocolConnection,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializeRequest,
  InitializedNotification,
  PublishDiagnosticsNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  type PublishDiagnosticsParams,
} from 'vscode-languageserver-protocol/node';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const { values } = parseArgs({ options: { tools: { type: 'string', default: '5000' }, edits: { type: 'string', default: '200' } } });
const toolCount = Number(values.tools);
const edits = Number(values.edits);

const toolPricing = Object.fromEntries(Array.from({ length: toolCount }, (_, i) => [`tool_${i}`, { creditsPerCall: 1 + (i % 7), rateLimitPerMin: 30 }]));
const text = `${JSON.stringify({ serverCommand: 'node', toolPricing, globalRateLimitPerMin: 60, port: 0 }, null, 2)}\n`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygate-lsp-bench-'));
const file = path.join(dir, 'paygate.json');
fs.writeFileSync(file, text);
const uri = pathToFileURL(file).href;

function quantile(sorted: number[], q: number): number {
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]! * 100) / 100;
}

const validateMs: number[] = [];
for (let run = 0; run < 5; run++) {
  const started = performance.now();
  const result = spawnSync(process.execPath, [CLI, 'validate', '--config', file], { encoding: 'utf8' });
  validateMs.push(performance.now() - started);
  if (result.status !== 0) throw new Error(result.stdout + result.stderr);
}

// As the extension starts it: a young generation of fixed size for the gates the daemon hosts.
const DAEMON_NODE_FLAGS = ['--max-semi-space-size=16'];
const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, CLI, 'lsp', '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
const connection = createProtocolConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
let waiting: ((params: PublishDiagnosticsParams) => void) | undefined;
connection.onNotification(PublishDiagnosticsNotification.type, (params: PublishDiagnosticsParams) => waiting?.(params));
connection.listen();
await connection.sendRequest(InitializeRequest.type, { processId: process.pid, rootUri: null, capabilities: {}, workspaceFolders: null });
await connection.sendNotification(InitializedNotification.type, {});

const published = (version: number) =>
  new Promise<PublishDiagnosticsParams>((resolve) => {
    waiting = (params) => {
      if (params.version === version) resolve(params);
    };
  });
let version = 1;
let opened = published(version);
await connection.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'jsonc', version, text } });
await opened;

// The edit makes tool_4917's rate limit 300 (above the global 60: a warning) and back to 30.
const editedAt = text.indexOf('"rateLimitPerMin": 30', text.indexOf('"tool_4917"')) + '"rateLimitPerMin": 30'.length;
const line = text.slice(0, editedAt).split('\n').length - 1;
const column = editedAt - (text.lastIndexOf('\n', editedAt - 1) + 1);
const edited = `${text.slice(0, editedAt)}0${text.slice(editedAt)}`;

type Change = { text: string } | { range: { start: { line: number; character: number }; end: { line: number; character: number } }; text: string };

/** The daemon's CPU time so far in ms (user + system, from /proc: Linux only), to read beside latencies a busy machine inflates. */
function daemonCpuMs(): number | undefined {
  try {
    const fields = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

/** Milliseconds from each `didChange` to the `publishDiagnostics` of its version (sorted), and the daemon's CPU per change. */
async function measure(changeFor: (raise: boolean) => Change): Promise<{ latencies: number[]; cpuMsPerChange: number | undefined }> {
  const cpuBefore = daemonCpuMs();
  const latencies: number[] = [];
  for (let edit = 0; edit < edits; edit++) {
    version++;
    const done = published(version);
    const raised = edit % 2 === 0;
    const change = changeFor(raised);
    const started = performance.now();
    await connection.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version }, contentChanges: [change] });
    const { diagnostics } = await done;
    latencies.push(performance.now() - started);
    if (diagnostics.length !== (raised ? 1 : 0)) throw new Error(`version ${version}: unexpected diagnostics ${JSON.stringify(diagnostics)}`);
  }
  const cpuAfter = daemonCpuMs();
  const cpuMsPerChange = cpuBefore === undefined || cpuAfter === undefined ? undefined : Math.round(((cpuAfter - cpuBefore) / edits) * 100) / 100;
  return { latencies: latencies.sort((a, b) => a - b), cpuMsPerChange };
}

const full = await measure((raise) => ({ text: raise ? edited : text }));
const incremental = await measure((raise) =>
  raise
    ? { range: { start: { line, character: column }, end: { line, character: column } }, text: '0' }
    : { range: { start: { line, character: column }, end: { line, character: column + 1 } }, text: '' },
);
const exited = new Promise((resolve) => child.once('exit', resolve));
await connection.sendRequest(ShutdownRequest.type);
await connection.sendNotification(ExitNotification.type);
await exited;
fs.rmSync(dir, { recursive: true, force: true });

validateMs.sort((a, b) => a - b);
const summary = ({ latencies, cpuMsPerChange }: { latencies: number[]; cpuMsPerChange: number | undefined }) => ({
  p50: quantile(latencies, 0.5),
  p95: quantile(latencies, 0.95),
  max: quantile(latencies, 1),
  daemonCpuMsPerChange: cpuMsPerChange,
});
const result = {
  harness: 'lsp-latency',
  tools: toolCount,
  fileBytes: Buffer.byteLength(text),
  edits,
  fullDocumentChangeToDiagnosticsMs: summary(full),
  incrementalChangeToDiagnosticsMs: summary(incremental),
  validateWallMs: { median: quantile(validateMs, 0.5), max: quantile(validateMs, 1) },
};
const { fullDocumentChangeToDiagnosticsMs: f, incrementalChangeToDiagnosticsMs: i } = result;
process.stderr.write(
  `${toolCount} priced tools: didChange → publishDiagnostics, whole document p50 ${f.p50} ms, p95 ${f.p95} ms (daemon CPU ${f.daemonCpuMsPerChange} ms); ` +
    `one-character range p50 ${i.p50} ms, p95 ${i.p95} ms (daemon CPU ${i.daemonCpuMsPerChange} ms); validate ${result.validateWallMs.median} ms\n`,
);
console.log(JSON.stringify(result));
