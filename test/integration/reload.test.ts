import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BACKEND, GateProcess, waitFor } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

function writeConfig(file: string, config: object): void {
  const temporary = `${file}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify(config, null, 2));
  fs.renameSync(temporary, file);
}

test('a changed config applies while calls are in flight: no call fails, no charge is lost', async () => {
  const dir = tempDir();
  const config = path.join(dir, 'paygate.json');
  const base = { serverCommand: process.execPath, serverArgs: [BACKEND], globalRateLimitPerMin: 0 };
  writeConfig(config, { ...base, toolPricing: { slow: { creditsPerCall: 1 } } });
  const gate = await GateProcess.start(['--config', config], { backend: 'from config', dir });
  const { key } = await gate.createKey({ credits: 1_000_000 });
  let stop = false;
  let answered = 0;
  const failures: string[] = [];
  const worker = async () => {
    while (!stop) {
      const reply = await gate.callTool(key, 'slow', { ms: 20 });
      if (reply.json?.result) answered++;
      else failures.push(reply.text);
    }
  };
  const workers = Array.from({ length: 8 }, worker);
  await new Promise((resolve) => setTimeout(resolve, 400));
  writeConfig(config, { ...base, toolPricing: { slow: { creditsPerCall: 3 } } });
  await waitFor('the new price', async () => (gate.stderr.includes('changed: applied') ? true : undefined));
  await new Promise((resolve) => setTimeout(resolve, 400));
  stop = true;
  await Promise.all(workers);
  assert.deepEqual(failures, []);
  const usage = await gate.admin('GET', '/usage?limit=10000');
  const charged = usage.json.events.filter((event: { status: string }) => event.status === 'charged');
  assert.equal(charged.length, answered);
  const prices = new Set(charged.map((event: { creditsCharged: number }) => event.creditsCharged));
  assert.deepEqual([...prices].sort(), [1, 3], 'calls before the change cost 1, after it 3');
  const spent = charged.reduce((sum: number, event: { creditsCharged: number }) => sum + event.creditsCharged, 0);
  assert.equal(await gate.balance(key), 1_000_000 - spent);
});

test('a broken config is refused: the previous one stays in force, and /health and the log say why', async () => {
  const dir = tempDir();
  const config = path.join(dir, 'paygate.json');
  writeConfig(config, { serverCommand: process.execPath, serverArgs: [BACKEND], toolPricing: { echo: { creditsPerCall: 2 } } });
  const gate = await GateProcess.start(['--config', config], { backend: 'from config', dir });
  const { key } = await gate.createKey({ credits: 100 });
  fs.writeFileSync(config, '{ "serverCommand": "node", "toolPricing": { "echo": { "creditsPerCall": "free" } } }');
  await waitFor('the refusal', async () => (gate.stderr.includes('was refused') ? true : undefined));
  assert.match(gate.stderr, /paygate\.json:1:\d+ error invalid-value toolPricing\.echo\.creditsPerCall must be integer/);
  const health = await gate.health();
  assert.equal(health.status, 200);
  assert.match(health.json.configRefused[0], /toolPricing\.echo\.creditsPerCall must be integer/);
  await gate.callTool(key, 'echo', { text: 'x' });
  assert.equal(await gate.balance(key), 98, 'the old price still applies');
  writeConfig(config, { serverCommand: process.execPath, serverArgs: [BACKEND], toolPricing: { echo: { creditsPerCall: 5 } } });
  await waitFor('the fixed config', async () => ((await gate.health()).json.configRefused === undefined ? true : undefined));
  await gate.callTool(key, 'echo', { text: 'x' });
  assert.equal(await gate.balance(key), 93);
});

test('a change made while the gate is still starting is applied once it runs', async () => {
  const dir = tempDir();
  const config = path.join(dir, 'paygate.json');
  const starting = path.join(dir, 'backend-starting');
  // The server takes a second to start, and says when it begins: the config has been read by then.
  const slowServer = { serverCommand: 'sh', serverArgs: ['-c', `touch "${starting}"; sleep 1; exec "${process.execPath}" "${BACKEND}"`] };
  writeConfig(config, { ...slowServer, toolPricing: { echo: { creditsPerCall: 2 } } });
  const started = GateProcess.start(['--config', config], { backend: 'from config', dir });
  await waitFor('the server to begin starting', async () => (fs.existsSync(starting) ? true : undefined));
  writeConfig(config, { ...slowServer, toolPricing: { echo: { creditsPerCall: 7 } } });
  const gate = await started;
  await waitFor('the change to apply', async () => (gate.stderr.includes('changed: applied') ? true : undefined));
  const { key } = await gate.createKey({ credits: 100 });
  await gate.callTool(key, 'echo', { text: 'x' });
  assert.equal(await gate.balance(key), 93);
});

test('servers added to the config start, removed ones finish their calls first', async () => {
  const dir = tempDir();
  const config = path.join(dir, 'paygate.json');
  const server = (prefix: string) => ({ prefix, serverCommand: process.execPath, serverArgs: [BACKEND] });
  writeConfig(config, { servers: [server('a')], globalRateLimitPerMin: 0 });
  const gate = await GateProcess.start(['--config', config], { backend: 'from config', dir });
  const { key } = await gate.createKey({ credits: 100 });
  const inFlight = gate.callTool(key, 'a:slow', { ms: 1500, text: 'finished' });
  await new Promise((resolve) => setTimeout(resolve, 200));
  writeConfig(config, { servers: [server('b')], globalRateLimitPerMin: 0 });
  await waitFor('server b', async () => ((await gate.callTool(key, 'b:echo', { text: 'b' })).json.result ? true : undefined));
  const removed = await gate.callTool(key, 'a:echo', { text: 'a' });
  assert.match(removed.json.error.message, /no server serves the tool "a:echo"/);
  assert.equal((await inFlight).json.result.content[0].text, 'finished');
  assert.match(gate.stderr, /started b: .*stopping a: /s);
});
