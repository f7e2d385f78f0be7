import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { BackendFailure } from '../../server/src/proxy/backend.ts';
import type { JsonRpcAnswer } from '../../server/src/proxy/jsonrpc.ts';
import { ProcessPool, type Isolation, type PoolOptions } from '../../server/src/proxy/pool.ts';
import type { ClientChannel, SessionDirectory } from '../../server/src/proxy/upstream.ts';
import { BACKEND } from '../helpers/gate.ts';
import { alive } from '../helpers/process.ts';

const NO_SESSIONS: SessionDirectory = { broadcast: () => {}, deliverToOrigin: () => false };

async function startPool(isolation: Partial<Isolation> & Pick<Isolation, 'mode'>, extra: Partial<PoolOptions> = {}): Promise<ProcessPool> {
  const pool = new ProcessPool(
    {
      backend: { label: 'test', command: process.execPath, args: [BACKEND], clientInfo: { name: 'test', version: '1' } },
      isolation: { idleTimeoutSec: 60, maxProcesses: 10, ...isolation },
      ...extra,
    },
    NO_SESSIONS,
  );
  after(() => pool.close());
  await pool.start();
  return pool;
}

function channel(keyHash: string | undefined, sessionId?: string): ClientChannel {
  return { origin: sessionId ?? `stateless-${Math.random()}`, keyHash, requestId: 1, sessionId, deliver: () => false };
}

function call(pool: ProcessPool, who: ClientChannel, name: string, args: Record<string, unknown> = {}): Promise<JsonRpcAnswer> {
  return pool.forward('tools/call', { name, arguments: args }, who, 10_000);
}

/** How many tools the process serving `who` has run, and its pid. */
async function count(pool: ProcessPool, who: ClientChannel): Promise<{ executed: number; pid: number }> {
  const answer = await call(pool, who, 'count');
  assert.ok('result' in answer, JSON.stringify(answer));
  return answer.result.structuredContent as { executed: number; pid: number };
}

async function waitFor(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('isolation key: each key gets a process of its own, kept for its later calls, and state is not shared', async () => {
  const pool = await startPool({ mode: 'key' });
  const a = channel('hash-a');
  const b = channel('hash-b');
  await call(pool, a, 'echo', { text: 'x' });
  await call(pool, a, 'echo', { text: 'y' });
  const first = await count(pool, a);
  const other = await count(pool, b);
  assert.equal(first.executed, 2);
  assert.equal(other.executed, 0, 'the other key does not see the first key’s calls');
  assert.notEqual(first.pid, other.pid);
  assert.equal((await count(pool, channel('hash-a'))).pid, first.pid, 'the same key, on another request, reuses its process');
  const report = pool.pools().get('test')!;
  assert.deepEqual(report.processes.filter((process) => process.kind === 'key').map((process) => process.keyHash).sort(), ['hash-a', 'hash-b']);
});

test('calls sent while a key’s process starts all wait for it and are answered by that one process', async () => {
  const pool = await startPool({ mode: 'key' });
  const who = channel('hash-burst');
  const answers = await Promise.all(Array.from({ length: 8 }, (_, index) => call(pool, who, 'echo', { text: String(index) })));
  assert.deepEqual(
    answers.map((answer) => ('result' in answer ? (answer.result.content as { text: string }[])[0]!.text : 'error')),
    ['0', '1', '2', '3', '4', '5', '6', '7'],
  );
  assert.equal((await count(pool, who)).executed, 8);
  assert.equal(pool.pools().get('test')!.processes.filter((process) => process.kind === 'key').length, 1);
});

test('a process without calls for idleTimeoutSec is stopped; the key’s next call starts a new one', async () => {
  const pool = await startPool({ mode: 'key', idleTimeoutSec: 1 });
  const who = channel('hash-idle');
  const { pid } = await count(pool, who);
  await new Promise((resolve) => setTimeout(resolve, 700));
  assert.ok(alive(pid), 'not stopped before its idle time');
  await waitFor('the idle process is stopped', () => !alive(pid), 3000);
  assert.equal(pool.pools().get('test')!.processes.filter((process) => process.kind === 'key').length, 0);
  const again = await count(pool, who);
  assert.notEqual(again.pid, pid);
  assert.equal(again.executed, 0);
});

test('at maxProcesses, a new key stops the least recently used idle process', async () => {
  const pool = await startPool({ mode: 'key', maxProcesses: 2 });
  const a = await count(pool, channel('hash-1'));
  const b = await count(pool, channel('hash-2'));
  await count(pool, channel('hash-1'));
  const c = await count(pool, channel('hash-3'));
  await waitFor('the least recently used process is stopped', () => !alive(b.pid));
  assert.ok(alive(a.pid), 'the more recently used process stays');
  assert.ok(alive(c.pid));
  assert.equal(pool.pools().get('test')!.processes.filter((process) => process.kind === 'key').length, 2);
});

test('when every process is busy, a new key’s call waits for one to become idle, and fails clearly past its wait', async () => {
  const pool = await startPool({ mode: 'key', maxProcesses: 1 });
  const busy = call(pool, channel('hash-busy'), 'slow', { ms: 1500 });
  await waitFor('the busy call runs', () => pool.pools().get('test')!.processes.some((process) => process.calls > 0 && process.kind === 'key'));
  const started = Date.now();
  // The wait is bounded by the call's own timeout (here 400 ms) when that is shorter than the pool's.
  await assert.rejects(pool.forward('tools/call', { name: 'echo', arguments: {} }, channel('hash-late'), 400), (error: unknown) => {
    assert.ok(error instanceof BackendFailure);
    assert.match(error.message, /one process per API key and all 1 \(maxProcesses\) are busy with calls: none became free within 400 ms.*raise maxProcesses/);
    return true;
  });
  assert.ok(Date.now() - started >= 350, 'it waited before failing');
  const waiting = call(pool, channel('hash-patient'), 'echo', { text: 'served' });
  await waitFor('the call is queued', () => pool.pools().get('test')!.queued === 1);
  assert.ok('result' in (await busy));
  const served = await waiting;
  assert.ok('result' in served, JSON.stringify(served));
  assert.equal(pool.pools().get('test')!.queued, 0);
  assert.deepEqual(pool.pools().get('test')!.processes.filter((process) => process.kind === 'key').map((process) => process.keyHash), ['hash-patient']);
});

test('the queue of calls waiting for a process is bounded: past it, a call fails at once', async () => {
  const pool = await startPool({ mode: 'key', maxProcesses: 1 }, { maxQueued: 1 });
  const busy = call(pool, channel('hash-busy'), 'slow', { ms: 800 });
  await waitFor('the busy call runs', () => pool.pools().get('test')!.processes.some((process) => process.calls > 0 && process.kind === 'key'));
  const queued = call(pool, channel('hash-queued'), 'echo');
  await assert.rejects(call(pool, channel('hash-over'), 'echo'), /1 calls are waiting already/);
  assert.ok('result' in (await busy));
  assert.ok('result' in (await queued));
});

test('isolation session: one process per session, stopped when the session ends; a call without a session is told it needs one', async () => {
  const pool = await startPool({ mode: 'session' });
  const first = await count(pool, channel('hash-s', 'session-1'));
  const second = await count(pool, channel('hash-s', 'session-2'));
  assert.notEqual(first.pid, second.pid, 'two sessions of one key get two processes');
  assert.equal((await count(pool, channel('hash-s', 'session-1'))).pid, first.pid);
  pool.forgetOrigin('session-1');
  await waitFor('the ended session’s process is stopped', () => !alive(first.pid));
  assert.ok(alive(second.pid));
  await assert.rejects(call(pool, channel('hash-s'), 'echo'), (error: unknown) => {
    assert.ok(error instanceof BackendFailure && error.kind === 'refused');
    assert.match(error.message, /needs an MCP session: it runs one process per session.*initialize/);
    return true;
  });
  const listed = await pool.forward('tools/list', undefined, channel(undefined), 5000);
  assert.ok('result' in listed && Array.isArray(listed.result.tools), 'listing without a session is answered by the catalog process');
});
