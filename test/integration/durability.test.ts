import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GateProcess, runCli } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

const CREDITS = 100_000;
const WORKERS = 12;

// A kill can fall between a turn's settlements reaching the journal and their answers reaching the
// sockets (two writes to different files: no order closes that gap). Those calls ran and keep their
// charge, and their answers die with the process; they can only be calls that were in flight.
test('kill -9 under load: after a restart every answered call is charged once, and at most the calls in flight besides', async () => {
  const dir = tempDir();
  const first = await GateProcess.start(['--rate-limit', '0'], { dir });
  const { key } = await first.createKey({ credits: CREDITS });
  let answered = 0;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      try {
        const reply = await first.callTool(key, 'slow', { ms: 1 });
        if (reply.json?.result) answered++;
      } catch {
        return;
      }
    }
  };
  const workers = Array.from({ length: WORKERS }, worker);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  first.kill('SIGKILL');
  stop = true;
  await Promise.all(workers);
  await first.exited;
  assert.ok(answered > 50, `only ${answered} calls were answered before the kill`);

  const second = await GateProcess.start(['--rate-limit', '0'], { dir });
  const spent = CREDITS - (await second.balance(key));
  assert.ok(spent >= answered, `${answered} calls were answered but only ${spent} credits are spent: a charge was lost`);
  assert.ok(spent - answered <= WORKERS, `${spent - answered} calls were charged without an answer, more than the ${WORKERS} that could be in flight`);
  const usage = await second.admin('GET', '/usage?limit=10000');
  const charged = usage.json.events.filter((event: { status: string }) => event.status === 'charged').length;
  assert.equal(charged, spent);
});

test('a corrupt state file stops the gate with an error that names it, and the file is not touched', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'state.db');
  const garbage = Buffer.from('definitely not a database\n'.repeat(100));
  fs.writeFileSync(file, garbage);
  const result = await runCli(['wrap', '--server', 'true', '--state-file', file, '--port', '0'], { cwd: dir });
  assert.equal(result.code, 1);
  assert.match(result.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*not a PayGate state database`));
  assert.deepEqual(fs.readFileSync(file), garbage);
});

test('a second gate on the same state file is refused while the first runs', async () => {
  const dir = tempDir();
  await GateProcess.start([], { dir });
  const result = await runCli(['wrap', '--server', 'true', '--port', '0', '--admin-key', 'admin_0123456789abcdef'], { cwd: dir });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /in use by another process/);
});

test('a paygate-mcp 2.x state file keeps working: its keys and balances carry over and the JSON is untouched', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'state.json');
  const key = `pg_${'ab'.repeat(24)}`;
  const legacy = JSON.stringify([[key, { key, name: 'old customer', credits: 42, totalSpent: 8, active: true, namespace: 'acme', allowedTools: [], deniedTools: [] }]], null, 2);
  fs.writeFileSync(file, legacy);
  const gate = await GateProcess.start(['--state-file', file, '--rate-limit', '0'], { dir });
  assert.match(gate.stderr, /imported 1 key/);
  assert.equal(await gate.balance(key), 42);
  assert.equal((await gate.callTool(key, 'echo', { text: 'still here' })).json.result.content[0].text, 'still here');
  assert.equal(await gate.balance(key), 41);
  await gate.stop();
  assert.equal(fs.readFileSync(file, 'utf8'), legacy);
  const again = await GateProcess.start(['--state-file', file, '--rate-limit', '0'], { dir });
  assert.equal(await again.balance(key), 41);
  assert.doesNotMatch(again.stderr, /imported/);
});
