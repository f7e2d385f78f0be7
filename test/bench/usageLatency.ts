/**
 * Time from a tool call's answer to the daemon's `paygate/usageChanged` snapshot that counts it: the
 * daemon's part of "the usage panel updates within 250 ms of a call" (the e2e test measures the whole
 * way to the tree on screen).
 *
 *   node test/bench/usageLatency.ts [--calls 200] [--gap-ms 30]
 *
 * Calls are made one at a time, `--gap-ms` apart. Prints one JSON line last.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createProtocolConnection, InitializeRequest, InitializedNotification, StreamMessageReader, StreamMessageWriter } from 'vscode-languageserver-protocol/node';
import { CreateKey, StartServer, UsageChanged, type UsageSnapshot } from '../../server/src/lsp/protocol.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({ options: { calls: { type: 'string', default: '200' }, 'gap-ms': { type: 'string', default: '30' } } });
const calls = Number(values.calls);
const gapMs = Number(values['gap-ms']);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygate-usage-bench-'));
const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'lsp', '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
const connection = createProtocolConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
let waiting: ((snapshot: UsageSnapshot) => void) | undefined;
connection.onNotification(UsageChanged, (snapshot) => waiting?.(snapshot));
connection.listen();
await connection.sendRequest(InitializeRequest.type, { processId: process.pid, rootUri: null, capabilities: {}, workspaceFolders: null });
await connection.sendNotification(InitializedNotification.type, {});

// No rate limit: the calls are spaced, but there are more than 60 a minute.
fs.writeFileSync(path.join(dir, 'paygate.json'), JSON.stringify({ globalRateLimitPerMin: 0 }));
const { status } = await connection.sendRequest(StartServer, {
  source: { kind: 'command', commandLine: `"${process.execPath}" "${path.join(ROOT, 'dist', 'example-server.js')}"`, config: path.join(dir, 'paygate.json') },
  baseDir: dir,
  defaults: { host: '127.0.0.1', port: 0, stateFile: 'state.db' },
  adminKey: 'admin_bench_0123456789abcdef',
  devKey: undefined,
});
const { key } = await connection.sendRequest(CreateKey, { name: 'bench', credits: calls + 10 });

const echoCalls = (snapshot: UsageSnapshot) => snapshot.servers.flatMap((server) => server.tools).find((tool) => tool.name === 'echo')?.calls ?? 0;
const latencies: number[] = [];
for (let call = 1; call <= calls; call++) {
  const counted = new Promise<number>((resolve) => {
    waiting = (snapshot) => {
      if (echoCalls(snapshot) >= call) resolve(performance.now());
    };
  });
  const response = await fetch(status.url!, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-api-key': key },
    body: JSON.stringify({ jsonrpc: '2.0', id: call, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } }),
  });
  const body = (await response.json()) as { error?: { message: string } };
  const answered = performance.now();
  if (body.error) throw new Error(`call ${call} failed: ${body.error.message}`);
  latencies.push(Math.max(0, (await counted) - answered));
  await new Promise((resolve) => setTimeout(resolve, gapMs));
}
child.kill();
fs.rmSync(dir, { recursive: true, force: true });

latencies.sort((a, b) => a - b);
const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))]! * 100) / 100;
const result = { harness: 'usage-latency', calls, gapMs, answerToSnapshotMs: { p50: at(0.5), p95: at(0.95), max: at(1) } };
process.stderr.write(`tool call answered → paygate/usageChanged counting it: p50 ${result.answerToSnapshotMs.p50} ms, p95 ${result.answerToSnapshotMs.p95} ms, max ${result.answerToSnapshotMs.max} ms\n`);
console.log(JSON.stringify(result));
