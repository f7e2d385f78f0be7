import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ADMIN_KEY, BACKEND, GateProcess, ROOT, runCli, waitFor } from '../helpers/gate.ts';
import { makeTlsFiles, RedisServer } from '../helpers/redis.ts';
import { tempDir } from '../helpers/tmp.ts';

const LIMIT = { timeout: 60_000 };
const REDIS_CLI = process.env.REDIS_CLI ?? '/usr/bin/redis-cli';
const PASSWORD = 'secret-7f3a9c';

/** The ACL user docs/ledger.md and the README recommend (the same line in both), with its password placeholder filled in. */
function recommendedAclUser(): string {
  const shown = ['docs/ledger.md', 'README.md'].map((file) => {
    const line = /^\s*(user paygate on >PASSWORD .*)$/m.exec(fs.readFileSync(path.join(ROOT, file), 'utf8'))?.[1];
    assert.ok(line, `${file} shows a \`user paygate on >PASSWORD …\` line`);
    return line;
  });
  assert.equal(shown[1], shown[0], 'README.md recommends the ACL user docs/ledger.md does');
  return shown[0]!.replace('>PASSWORD', `>${PASSWORD}`);
}

/** Writes `config` as paygate.json into a fresh directory; returns the file's path. */
function writeConfig(config: Record<string, unknown>): string {
  const file = path.join(tempDir(), 'paygate.json');
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

async function gateWithConfig(config: Record<string, unknown>): Promise<GateProcess> {
  const file = writeConfig(config);
  return GateProcess.start(['--config', file], { dir: path.dirname(file) });
}

/** Runs `paygate-mcp wrap` with `args` and expects it to refuse to start; returns everything it printed. */
async function refusedStart(args: string[]): Promise<string> {
  const run = await runCli(['wrap', '--server', `"${process.execPath}" "${BACKEND}"`, '--port', '0', '--admin-key', ADMIN_KEY, ...args], { timeoutMs: 30_000 });
  assert.notEqual(run.code, 0, `the gate must not start: ${run.stdout}`);
  assert.doesNotMatch(run.stdout, /MCP endpoint/);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'a message, not a stack trace');
  return `${run.stdout}${run.stderr}`;
}

/** A key with 10 credits, one paid call through the gate (1 credit), and the balance it leaves. */
async function spendOneCredit(gate: GateProcess): Promise<{ id: number; key: string }> {
  const { key, id } = await gate.createKey({ name: 'deploy', credits: 10 });
  const reply = await gate.callTool(key, 'echo', { text: 'paid' });
  assert.equal(reply.json.result?.content?.[0]?.text, 'paid', reply.text);
  assert.equal(await gate.balance(key), 9);
  return { id, key };
}

async function withClient<T>(client: Redis | Cluster, use: (client: Redis | Cluster) => Promise<T>): Promise<T> {
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

/** An administrator's connection (the default user) to one server. */
function adminClient(port: number, options: RedisOptions = {}): Redis {
  return new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, ...options });
}

test('an ACL user limited to the recommended commands runs the gate in database 3, admin writes and redis export included', LIMIT, async (t) => {
  const redis = await RedisServer.start({ config: [recommendedAclUser()] });
  t.after(() => redis.stop());
  const url = `redis://paygate:${PASSWORD}@127.0.0.1:${redis.port}/3`;

  const gate = await gateWithConfig({ redisUrl: url });
  const { id, key } = await spendOneCredit(gate);
  assert.equal((await gate.admin('POST', '/topup', { id, credits: 5 })).status, 200);
  assert.equal(await gate.balance(key), 14);
  const rotated = await gate.admin('POST', '/keys/rotate', { id });
  assert.equal(rotated.status, 200, rotated.text);
  assert.equal((await gate.admin('GET', '/keys')).json.length, 1);
  assert.equal((await gate.admin('GET', '/status')).status, 200);
  assert.deepEqual((await gate.admin('GET', '/usage')).json.events.map((event: { status: string }) => event.status), ['charged']);
  assert.equal(await gate.stop(), 0);
  assert.ok(!`${gate.stdout}${gate.stderr}`.includes(PASSWORD), 'the password is never printed');

  const exported = await runCli(['redis', 'export', '--redis-url', url, '--state-file', path.join(gate.dir, 'out.db')]);
  assert.equal(exported.code, 0, exported.stderr);
  assert.match(exported.stdout, /exported 1 key\(s\) and 1 usage event\(s\)/);

  await withClient(adminClient(redis.port, { db: 3 }), async (admin) => {
    assert.equal(await admin.hget(`{paygate}:key:${id}`, 'credits'), '14', 'the balance lives in database 3');
    assert.deepEqual(await admin.call('ACL', 'LOG'), [], 'Redis refused the PayGate user nothing');
  });
  await withClient(adminClient(redis.port, { db: 0 }), async (admin) => assert.equal(await admin.dbsize(), 0, 'database 0 holds nothing'));
});

test('the recommended ACL user allows every command the ledger scripts call', () => {
  const granted = new Set(recommendedAclUser().split(' ').filter((rule) => rule.startsWith('+')).map((rule) => rule.slice(1)));
  const luaDir = path.join(ROOT, 'server', 'src', 'store', 'redis', 'lua');
  const called = new Set<string>();
  for (const file of fs.readdirSync(luaDir)) {
    for (const match of fs.readFileSync(path.join(luaDir, file), 'utf8').matchAll(/redis\.p?call\('([A-Za-z]+)'/g)) called.add(match[1]!.toLowerCase());
  }
  assert.ok(called.size > 10, 'the scripts were found');
  assert.deepEqual([...called].filter((command) => !granted.has(command)), []);
});

test('a wrong password stops the gate at start with a message naming Redis without the password', LIMIT, async (t) => {
  const redis = await RedisServer.start({ config: [recommendedAclUser()] });
  t.after(() => redis.stop());
  const wrong = 'not-the-password-51e2';
  const printed = await refusedStart(['--redis-url', `redis://paygate:${wrong}@127.0.0.1:${redis.port}/3`]);
  assert.match(printed, new RegExp(`cannot connect to Redis at redis://paygate@127\\.0\\.0\\.1:${redis.port}/3: WRONGPASS`));
  assert.ok(!printed.includes(wrong), 'the password is never printed');
});

test('rediss:// with the CA file and server name of the config reaches a TLS-only Redis; without the CA or the name the gate refuses to start', LIMIT, async (t) => {
  const serverName = 'redis.paygate.test';
  const files = makeTlsFiles(tempDir(), serverName);
  const redis = await RedisServer.start({ tls: files });
  t.after(() => redis.stop());
  assert.match(redis.url, /^rediss:\/\/127\.0\.0\.1:/);

  const gate = await gateWithConfig({ redisUrl: redis.url, redis: { tls: { caFile: files.caFile, servername: serverName } } });
  const { id } = await spendOneCredit(gate);
  assert.equal(await gate.stop(), 0);
  const tls = { ca: fs.readFileSync(files.caFile), servername: serverName };
  await withClient(adminClient(redis.port, { tls }), async (admin) => assert.equal(await admin.hget(`{paygate}:key:${id}`, 'credits'), '9'));

  const untrusted = await refusedStart(['--redis-url', redis.url]);
  assert.match(untrusted, new RegExp(`cannot connect to Redis at rediss://127\\.0\\.0\\.1:${redis.port}: self-signed certificate in certificate chain`));

  const misnamed = await refusedStart(['--config', writeConfig({ redisUrl: redis.url, redis: { tls: { caFile: files.caFile } } })]);
  assert.match(misnamed, /cannot connect to Redis at rediss:\/\/127\.0\.0\.1:\d+: Hostname\/IP does not match certificate's altnames/);
});

test('through Redis Sentinel the gate finds the master the sentinel names and keeps its state there', LIMIT, async (t) => {
  const master = await RedisServer.start();
  t.after(() => master.stop());
  const sentinel = await RedisServer.start({ sentinel: true, config: [`sentinel monitor paygate-main 127.0.0.1 ${master.port} 1`] });
  t.after(() => sentinel.stop());

  // Nothing listens at the URL's address: only the sentinel can lead the gate to the master.
  const gate = await gateWithConfig({
    redisUrl: 'redis://127.0.0.1:1/2',
    redis: { sentinels: [{ host: '127.0.0.1', port: sentinel.port }], sentinelName: 'paygate-main' },
  });
  const { id } = await spendOneCredit(gate);
  assert.equal(await gate.stop(), 0);
  await withClient(adminClient(master.port, { db: 2 }), async (admin) => assert.equal(await admin.hget(`{paygate}:key:${id}`, 'credits'), '9'));

  const unknown = await refusedStart(['--redis-url', 'redis://127.0.0.1:1/2', '--config', writeConfig({ redis: { sentinels: [{ host: '127.0.0.1', port: sentinel.port }], sentinelName: 'nobody' } })]);
  assert.match(unknown, /cannot connect to Redis at Redis Sentinel master "nobody" via 127\.0\.0\.1:\d+: no connection within 5000 ms; last error: .*No such master with that name/);
});

test('sentinels that require a password are reached with sentinelPassword; without it the gate refuses to start', LIMIT, async (t) => {
  const master = await RedisServer.start();
  t.after(() => master.stop());
  const sentinel = await RedisServer.start({ sentinel: true, config: [`sentinel monitor paygate-main 127.0.0.1 ${master.port} 1`, 'requirepass sentinel-secret'] });
  t.after(() => sentinel.stop());
  const through = { sentinels: [{ host: '127.0.0.1', port: sentinel.port }], sentinelName: 'paygate-main' };

  const gate = await gateWithConfig({ redisUrl: 'redis://127.0.0.1:1/0', redis: { ...through, sentinelPassword: 'sentinel-secret' } });
  const { id } = await spendOneCredit(gate);
  assert.equal(await gate.stop(), 0);
  await withClient(adminClient(master.port), async (admin) => assert.equal(await admin.hget(`{paygate}:key:${id}`, 'credits'), '9'));

  const refused = await refusedStart(['--redis-url', 'redis://127.0.0.1:1/0', '--config', writeConfig({ redis: through })]);
  assert.match(refused, /cannot connect to Redis at Redis Sentinel master "paygate-main"/);
  assert.doesNotMatch(refused, /sentinel-secret/);
});

/** `defer(cleanup)`: run when the test ends, last first (clients close before their servers stop). */
function deferrals(t: TestContext): (cleanup: () => unknown) => void {
  const cleanups: (() => unknown)[] = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  return (cleanup) => cleanups.push(cleanup);
}

/** Connections to a server other than the administrator's, the sentinels' and the replicas': the gate's. */
async function gateConnections(admin: Redis): Promise<number> {
  const own = String(await admin.call('CLIENT', 'ID'));
  const clients = String(await admin.call('CLIENT', 'LIST')).trim().split('\n').map((line) => new Map(line.split(' ').map((pair) => pair.split('=', 2) as [string, string])));
  return clients.filter((client) => client.get('id') !== own && !client.get('name')?.startsWith('sentinel-') && !client.get('flags')?.includes('S')).length;
}

test('when the sentinel switches master, the gate leaves the old one at once and charges on the new one', LIMIT, async (t) => {
  const defer = deferrals(t);
  const master = await RedisServer.start({ args: ['--repl-diskless-sync-delay', '0'] });
  defer(() => master.stop());
  const replica = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  defer(() => replica.stop());
  const sentinel = await RedisServer.start({
    sentinel: true,
    config: [`sentinel monitor paygate-main 127.0.0.1 ${master.port} 1`, 'sentinel down-after-milliseconds paygate-main 1000', 'sentinel failover-timeout paygate-main 20000'],
  });
  defer(() => sentinel.stop());
  const oldMaster = adminClient(master.port, { db: 2 });
  const newMaster = adminClient(replica.port, { db: 2 });
  const sentinelAdmin = adminClient(sentinel.port);
  defer(() => [oldMaster, newMaster, sentinelAdmin].forEach((client) => client.disconnect()));
  await waitFor('the replica to be in sync', async () => (await newMaster.info('replication')).includes('master_link_status:up') || undefined, 20_000);
  await waitFor('the sentinel to know the replica', async () => ((await sentinelAdmin.call('SENTINEL', 'REPLICAS', 'paygate-main')) as unknown[]).length > 0 || undefined, 20_000);

  const gate = await gateWithConfig({
    redisUrl: 'redis://127.0.0.1:1/2',
    redis: { sentinels: [{ host: '127.0.0.1', port: sentinel.port }], sentinelName: 'paygate-main' },
  });
  const { id, key } = await spendOneCredit(gate);
  assert.ok((await oldMaster.call('WAIT', '1', '5000')) === 1, 'the replica has the charge');
  assert.ok((await gateConnections(oldMaster)) > 0);

  assert.equal(await sentinelAdmin.call('SENTINEL', 'FAILOVER', 'paygate-main'), 'OK');
  await waitFor('the sentinel to name the replica master', async () => ((await sentinelAdmin.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'paygate-main')) as string[])[1] === String(replica.port) || undefined, 20_000);
  // The old master takes writes until the sentinel demotes it (seconds later); those would be lost.
  await waitFor('the gate to leave the old master', async () => ((await gateConnections(oldMaster)) === 0 ? true : undefined), 5_000);

  let served = 0;
  await waitFor('a call served by the gate', async () => {
    if ((await gate.callTool(key, 'echo', { text: 'after' })).json.result) served += 1;
    return served > 0 || undefined;
  });
  assert.equal(await gate.balance(key), 9 - served);
  assert.equal(await newMaster.hget(`{paygate}:key:${id}`, 'credits'), String(9 - served), 'charged on the new master');
  assert.equal(await gate.stop(), 0);
});

test('on a three-node Redis Cluster the gate works with the ACL user of the URL, and every PayGate key is in one hash slot', LIMIT, async (t) => {
  const aclUser = `${recommendedAclUser()} +cluster|slots +cluster|info +client|setname`;
  const defer = deferrals(t);
  const nodes: RedisServer[] = [];
  for (let i = 0; i < 3; i += 1) {
    const node = await RedisServer.start({ config: [aclUser], args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'] });
    defer(() => node.stop());
    nodes.push(node);
  }
  await promisify(execFile)(REDIS_CLI, ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
  await waitFor('the cluster to be ok on every node', async () => {
    const states = await Promise.all(nodes.map((node) => withClient(adminClient(node.port), (admin) => admin.call('CLUSTER', 'INFO') as Promise<string>)));
    return states.every((info) => info.includes('cluster_state:ok')) || undefined;
  }, 20_000);

  const gate = await gateWithConfig({
    redisUrl: `redis://paygate:${PASSWORD}@127.0.0.1:${nodes[0]!.port}`,
    redis: { clusterNodes: nodes.map((node) => ({ host: '127.0.0.1', port: node.port })) },
  });
  const { id } = await spendOneCredit(gate);
  assert.equal(await gate.stop(), 0);

  const slot = await withClient(adminClient(nodes[0]!.port), (admin) => admin.call('CLUSTER', 'KEYSLOT', '{paygate}') as Promise<number>);
  const counts = await Promise.all(
    nodes.map((node) =>
      withClient(adminClient(node.port), async (admin) => ({
        keys: await admin.dbsize(),
        inSlot: (await admin.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot))) as number,
        refused: await admin.call('ACL', 'LOG'),
      })),
    ),
  );
  const owners = counts.filter((count) => count.keys > 0);
  assert.equal(owners.length, 1, 'one node holds every PayGate key');
  assert.ok(owners[0]!.keys > 3, 'the gate wrote its keys');
  assert.equal(owners[0]!.inSlot, owners[0]!.keys, `all of them in the slot of {paygate} (${slot})`);
  assert.deepEqual(counts.map((count) => count.refused), [[], [], []], 'Redis refused the PayGate user nothing');

  await withClient(new Cluster([{ host: '127.0.0.1', port: nodes[0]!.port }]), async (cluster) => assert.equal(await cluster.hget(`{paygate}:key:${id}`, 'credits'), '9'));
});
