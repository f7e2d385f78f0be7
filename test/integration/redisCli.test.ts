import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { GateProcess, runCli } from '../helpers/gate.ts';
import { RedisServer } from '../helpers/redis.ts';

const redis = await RedisServer.start();
after(() => redis.stop());
const url = `redis://127.0.0.1:${redis.port}`;

test('a SQLite gate moves to Redis with redis import, keeps its keys, balances and usage, and comes back with redis export', async () => {
  const sqliteGate = await GateProcess.start();
  const stateFile = path.join(sqliteGate.dir, '.paygate', 'state.db');
  const { key } = await sqliteGate.createKey({ name: 'alice', credits: 10 });
  assert.ok((await sqliteGate.callTool(key, 'echo', { text: 'one' })).json.result);
  assert.ok((await sqliteGate.callTool(key, 'echo', { text: 'two' })).json.result);
  assert.equal(await sqliteGate.stop(), 0);

  const imported = await runCli(['redis', 'import', '--state-file', stateFile, '--redis-url', url, '--key-prefix', 'moved']);
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /imported 1 key\(s\) and 2 usage event\(s\)/);

  const again = await runCli(['redis', 'import', '--state-file', stateFile, '--redis-url', url, '--key-prefix', 'moved']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already holds PayGate state under the prefix \{moved\}/);

  fs.writeFileSync(path.join(sqliteGate.dir, 'paygate.json'), JSON.stringify({ redisUrl: url, redis: { keyPrefix: 'moved' } }));
  const onRedis = await GateProcess.start(['--config', 'paygate.json'], { dir: sqliteGate.dir });
  assert.equal(await onRedis.balance(key), 8, 'the balance moved');
  assert.ok((await onRedis.callTool(key, 'echo', { text: 'three' })).json.result, 'the key works on Redis');
  const usage = await onRedis.admin('GET', '/usage');
  assert.deepEqual(usage.json.events.map((event: { status: string }) => event.status), ['charged', 'charged', 'charged']);
  assert.equal(await onRedis.stop(), 0);

  const back = path.join(sqliteGate.dir, 'back.db');
  const exported = await runCli(['redis', 'export', '--redis-url', url, '--key-prefix', 'moved', '--state-file', back]);
  assert.equal(exported.code, 0, exported.stderr);
  assert.match(exported.stdout, /exported 1 key\(s\) and 3 usage event\(s\)/);
  const onSqlite = await GateProcess.start(['--state-file', back], { dir: sqliteGate.dir });
  assert.equal(await onSqlite.balance(key), 7);
});

test('redis import and export say what is wrong: no URL, an unreachable Redis, a missing state file, an unknown action', async () => {
  const noUrl = await runCli(['redis', 'import', '--state-file', 'x.db']);
  assert.equal(noUrl.code, 2);
  assert.match(noUrl.stderr, /name the Redis with --redis-url/);

  const missing = await runCli(['redis', 'import', '--state-file', 'nowhere.db', '--redis-url', url]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /the state file nowhere\.db does not exist/);

  const unreachable = await runCli(['redis', 'export', '--state-file', 'out.db', '--redis-url', 'redis://127.0.0.1:1']);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /^paygate-mcp: cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/);
  assert.doesNotMatch(unreachable.stderr, /\n\s+at /, 'a message, not a stack trace');

  const unknown = await runCli(['redis', 'frob']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /the redis commands are: import, export/);
});
