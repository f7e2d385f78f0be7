/**
 * Start-up time and resident memory of a gate whose state holds many keys.
 *
 *   node test/bench/startup.ts [--keys 100000] [--calls 2000]
 *
 * Seeds the keys with `paygate-mcp keys import` (the hashing and inserting are part of the import,
 * not of the measured start), then starts the gate several times on that state and reports the time
 * from spawn to a healthy /health, and the gate's resident memory after serving calls with one key.
 * Prints one JSON line last.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, ROOT, spawnGate, type BenchGate } from './gateProcess.ts';

const BACKEND = path.join(ROOT, 'test', 'fixtures', 'backend.ts');
const ADMIN = 'admin_bench_0123456789abcdef';

const { values } = parseArgs({ options: { keys: { type: 'string', default: '100000' }, calls: { type: 'string', default: '2000' }, starts: { type: 'string', default: '3' } } });
const keyCount = Number(values.keys);
const calls = Number(values.calls);
const starts = Number(values.starts);

function residentKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
}

async function startGate(stateFile: string): Promise<BenchGate & { ms: number }> {
  const began = performance.now();
  const gate = await spawnGate(['wrap', '--server', `"${process.execPath}" "${BACKEND}"`, '--port', '0', '--state-file', stateFile, '--admin-key', ADMIN, '--rate-limit', '0'], { captureStderr: true });
  while ((await fetch(`${gate.base}/health`)).status !== 200) await new Promise((resolve) => setTimeout(resolve, 5));
  return { ...gate, ms: performance.now() - began };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygate-bench-'));
try {
  const stateFile = path.join(dir, 'state.db');
  const seed = path.join(dir, 'keys.jsonl');
  const lines: string[] = [];
  for (let i = 0; i < keyCount; i++) lines.push(JSON.stringify({ key: `pg_${randomBytes(24).toString('hex')}`, name: `seed-${i}`, credits: 1000 }));
  const probeKey = `pg_${randomBytes(24).toString('hex')}`;
  lines.push(JSON.stringify({ key: probeKey, name: 'probe', credits: 1_000_000_000 }));
  fs.writeFileSync(seed, `${lines.join('\n')}\n`);
  const imported = spawnSync(process.execPath, [CLI, 'keys', 'import', seed, '--state-file', stateFile], { encoding: 'utf8' });
  if (imported.status !== 0) throw new Error(imported.stderr);

  const startMs: number[] = [];
  let rssKiB = NaN;
  for (let run = 0; run < starts; run++) {
    const gate = await startGate(stateFile);
    startMs.push(Math.round(gate.ms));
    if (run === starts - 1) {
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } });
      for (let i = 0; i < calls; i++) {
        await fetch(`http://127.0.0.1:${gate.port}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': probeKey }, body });
      }
      rssKiB = residentKiB(gate.pid);
    }
    await gate.stop();
  }
  const sorted = [...startMs].sort((a, b) => a - b);
  const result = { harness: 'startup', keys: keyCount + 1, stateFileBytes: fs.statSync(stateFile).size, startMs, startMedianMs: sorted[Math.floor(sorted.length / 2)], rssMiB: Math.round(rssKiB / 102.4) / 10 };
  process.stderr.write(`keys ${result.keys}: start-up ${result.startMedianMs} ms (median of ${startMs.join(', ')}), resident memory ${result.rssMiB} MiB after ${calls} calls\n`);
  console.log(JSON.stringify(result));
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
