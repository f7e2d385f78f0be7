import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SessionLogLevels } from '../../server/src/proxy/logLevels.ts';
import { relatedTaskOf, TaskOwners } from '../../server/src/proxy/tasks.ts';
import type { ClientChannel } from '../../server/src/proxy/upstream.ts';

function channel(keyHash: string | undefined, sessionId: string | undefined): ClientChannel {
  return { origin: sessionId ?? 'stateless-1', keyHash, requestId: 1, sessionId, deliver: () => true };
}

test('the server is told the most verbose level any live session asked for, again when that session ends', () => {
  const levels = new SessionLogLevels();
  assert.equal(levels.set('a', 'warning'), 'warning');
  assert.equal(levels.set('b', 'debug'), 'debug');
  assert.equal(levels.set('c', 'error'), undefined, 'unchanged: nothing to tell');
  assert.equal(levels.forget('b'), 'warning');
  assert.equal(levels.forget('nobody'), undefined);
  assert.equal(levels.forget('a'), 'error');
  assert.equal(levels.forget('c'), undefined, 'no session asks for anything: the server keeps its last level');
  assert.equal(levels.size, 0);
});

test('a session gets log messages at or above its level; one that never set a level gets all', () => {
  const levels = new SessionLogLevels();
  levels.set('a', 'warning');
  assert.deepEqual(['info', 'warning', 'emergency'].map((level) => levels.admits('a', level)), [false, true, true]);
  assert.equal(levels.admits('other', 'debug'), true);
});

test('a task belongs to the key that created it: others get "not found" for it, and an empty or filtered list', () => {
  const tasks = new TaskOwners(() => 0);
  const owner = channel('k1', 's1');
  const sameKeyOtherSession = channel('k1', undefined);
  const thief = channel('k2', 's2');
  const keyless = channel(undefined, undefined);
  tasks.answered('tools/call', owner, { result: { task: { taskId: 't1', status: 'working', ttl: 1000 } } });
  assert.equal(tasks.refusal('tasks/get', { taskId: 't1' }, owner), undefined);
  assert.equal(tasks.refusal('tasks/result', { taskId: 't1' }, sameKeyOtherSession), undefined, 'a task is the key\'s, in any session');
  for (const method of ['tasks/get', 'tasks/result', 'tasks/cancel']) {
    assert.deepEqual(tasks.refusal(method, { taskId: 't1' }, thief), tasks.refusal(method, { taskId: 't1' }, channel('k3', undefined)));
    assert.deepEqual(tasks.refusal(method, { taskId: 't1' }, thief), { error: { code: -32602, message: 'Task not found: t1' } });
  }
  assert.deepEqual(tasks.refusal('tasks/list', {}, keyless), { result: { tasks: [] } });
  const list = { result: { tasks: [{ taskId: 't1' }, { taskId: 'someone-elses' }], nextCursor: 'c' } };
  assert.deepEqual(tasks.answered('tasks/list', thief, list), { result: { tasks: [], nextCursor: 'c' } });
  assert.deepEqual(tasks.answered('tasks/list', owner, list), { result: { tasks: [{ taskId: 't1' }], nextCursor: 'c' } });
  assert.equal(tasks.ownerOf('t1')?.origin, 's1');
});

test('expired tasks are forgotten as new ones are created', () => {
  let now = 0;
  const tasks = new TaskOwners(() => now);
  tasks.answered('tools/call', channel('k1', undefined), { result: { task: { taskId: 'old', ttl: 10 } } });
  now = 11;
  tasks.answered('tools/call', channel('k1', undefined), { result: { task: { taskId: 'new', ttl: 10 } } });
  assert.equal(tasks.size, 1);
  assert.equal(tasks.ownerOf('old'), undefined);
});

test('a server message is about a task when it says so in _meta, or reports its status', () => {
  assert.equal(relatedTaskOf({ jsonrpc: '2.0', method: 'notifications/tasks/status', params: { taskId: 't1' } }), 't1');
  assert.equal(relatedTaskOf({ jsonrpc: '2.0', id: 1, method: 'elicitation/create', params: { _meta: { 'io.modelcontextprotocol/related-task': { taskId: 't2' } } } }), 't2');
  assert.equal(relatedTaskOf({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info' } }), undefined);
});
