/**
 * Hot reload while serving at full speed: 16 clients call a tool as fast as they can while the
 * config file is rewritten (the price flips between 1 and 2) every 250 ms. Reports failed calls and
 * lost charges (credits taken that no charged event accounts for, or answered calls without one).
 *
 *   node test/bench/reloadUnderLoad.ts [--seconds 5] [-c 16]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, spawnGate } from './gateProcess.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, c: { type: 'string', default: '16' } } });
const ADMIN = 'admin_bench_0123456789abcdef';
const CREDITS = 1_000_000_000;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygate-reload-bench-'));
const config = path.join(dir, 'paygate.json');
const write = (price: number) => {
  fs.writeFileSync(`${config}.tmp`, JSON.stringify({ serverCommand: process.execPath, serverArgs: [path.join(ROOT, 'test', 'fixtures', 'backend.ts')], globalRateLimitPerMin: 0, toolPricing: { echo: { creditsPerCall: price } } }));
  fs.renameSync(`${config}.tmp`, config);
};
write(1);
const gate = await spawnGate(['wrap', '--config', config, '--port', '0', '--admin-key', ADMIN, '--state-file', path.join(dir, 'state.db')], { captureStderr: true });
const base = gate.base;

const admin = { 'x-admin-key': ADMIN, 'content-type': 'application/json' };
const { key } = (await (await fetch(`${base}/keys`, { method: 'POST', headers: admin, body: JSON.stringify({ credits: CREDITS }) })).json()) as { key: string };
const deadline = Date.now() + Number(values.seconds) * 1000;
let answered = 0;
let failed = 0;
const worker = async () => {
  for (let seq = 0; Date.now() < deadline; seq++) {
    const reply = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify({ jsonrpc: '2.0', id: seq, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } }),
    });
    const body = (await reply.json()) as { result?: unknown };
    if (body.result) answered++;
    else failed++;
  }
};
let flips = 0;
const flipper = setInterval(() => write(++flips % 2 === 0 ? 1 : 2), 250);
await Promise.all(Array.from({ length: Number(values.c) }, worker));
clearInterval(flipper);

let charged = 0;
let chargedCredits = 0;
for (let cursor: number | null = 0; cursor !== null; ) {
  const page = (await (await fetch(`${base}/usage?limit=10000&cursor=${cursor}`, { headers: admin })).json()) as { events: { status: string; creditsCharged: number }[]; nextCursor: number | null };
  for (const event of page.events) {
    if (event.status !== 'charged') continue;
    charged++;
    chargedCredits += event.creditsCharged;
  }
  cursor = page.nextCursor;
}
const { credits } = (await (await fetch(`${base}/balance`, { headers: { 'x-api-key': key } })).json()) as { credits: number };
await gate.stop();
fs.rmSync(dir, { recursive: true, force: true });
const reloads = (gate.stderr().match(/changed: applied/g) ?? []).length;
const result = { harness: 'reload-under-load', seconds: Number(values.seconds), concurrency: Number(values.c), reloads, answered, failed, lostCharges: Math.abs(CREDITS - credits - chargedCredits) + Math.abs(answered - charged) };
process.stderr.write(`${answered} calls answered during ${reloads} reloads: ${failed} failed, ${result.lostCharges} lost charges\n`);
console.log(JSON.stringify(result));
