import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { LogMessageNotification } from 'vscode-languageserver-protocol/node';
import { StartServer } from '../../server/src/lsp/protocol.ts';
import { ADMIN_KEY, BACKEND, GateProcess, ROOT, waitFor } from '../helpers/gate.ts';
import { DaemonClient } from '../helpers/lsp.ts';
import { tempDir } from '../helpers/tmp.ts';

const CRASHING_DAEMON = path.join(ROOT, 'test', 'fixtures', 'crashingDaemon.ts');

/** Processes in process group `pgid` that are alive (not zombies). */
function liveInGroup(pgid: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return Number(group) === pgid && state !== 'Z' ? [Number(entry)] : [];
      } catch {
        return [];
      }
    });
}

function call(url: string, key: string, name: string, args: object): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-api-key': key },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }),
  });
}

test('an uncaught exception in the daemon stops its gate cleanly: the call in flight is answered and charged, the server is gone, the exit code is 1', async () => {
  const daemon = await DaemonClient.start(process.execPath, [CRASHING_DAEMON, '--stdio']);
  const dir = tempDir();
  const exited = new Promise<number | null | 'still running'>((resolve) => {
    daemon.child.on('exit', (code) => resolve(code));
    setTimeout(() => resolve('still running'), 20_000).unref();
  });
  const logged: string[] = [];
  daemon.connection.onNotification(LogMessageNotification.type, ({ message }) => void logged.push(message));
  const { status, devKey } = await daemon.connection.sendRequest(StartServer, {
    source: { kind: 'command', commandLine: `sh -c 'TEST_OUTLIVE_STDIN=1 "${process.execPath}" "${BACKEND}"; exit 0'` },
    baseDir: dir,
    defaults: { host: '127.0.0.1', port: 0, stateFile: '.paygate/state.db' },
    adminKey: ADMIN_KEY,
    devKey: undefined,
  });
  const launcher = await waitFor('the server', async () => {
    const children = fs.readFileSync(`/proc/${daemon.child.pid}/task/${daemon.child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return children.find((pid) => liveInGroup(pid).length === 2);
  });

  assert.equal((await call(status.url!, devKey, 'echo', { text: 'before' })).status, 200);
  const inFlight = call(status.url!, devKey, 'slow', { ms: 600, text: 'finished' });
  await new Promise((resolve) => setTimeout(resolve, 150));
  daemon.child.kill('SIGUSR2');

  const answer = await inFlight;
  assert.equal(((await answer.json()) as { result: { content: { text: string }[] } }).result.content[0]!.text, 'finished');
  assert.equal(await exited, 1);
  assert.ok(logged.some((line) => line.includes('stopping after an unexpected error: Error: a bug in the daemon')), logged.join('\n'));
  assert.deepEqual(liveInGroup(launcher), [], 'the gated server outlived the daemon');

  // The state file, opened by a new gate (which would refund a call left unanswered), has both charges.
  const reopened = await GateProcess.start(['--state-file', path.join(dir, '.paygate', 'state.db')]);
  assert.equal(await reopened.balance(devKey), 1000 - 2);
});
