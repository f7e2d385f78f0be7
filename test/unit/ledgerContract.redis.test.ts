import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import { PolicyEngine } from '../../server/src/gate/policyEngine.ts';
import { displayPrefix, generateApiKey, hashApiKey } from '../../server/src/keys/apiKey.ts';
import { newKeyRecord } from '../../server/src/keys/fields.ts';
import { LedgerUnavailableError, type Ledger } from '../../server/src/store/contract.ts';
import { openRedisLedger } from '../../server/src/store/redis/connection.ts';
import { describeLedgerContract, type OpenedLedger } from '../contract/ledger.contract.ts';
import { RedisServer } from '../helpers/redis.ts';
import { policy } from '../helpers/records.ts';
import { countCommands } from '../helpers/redisCommands.ts';

/** Long enough for a live instance to renew it many times, short enough for a test to wait it out. */
const LEASE_MS = 300;

const redis = await RedisServer.start();
after(() => redis.stop());

interface OpenedRedis extends OpenedLedger {
  keyPrefix: string;
}

let prefixes = 0;
const freshPrefix = () => `contract-${process.pid}-${prefixes++}`;

async function openOn(url: string, keyPrefix: string, leaseMs = LEASE_MS): Promise<OpenedRedis> {
  const ledger: Ledger = await openRedisLedger({ url, keyPrefix, leaseMs });
  return { ledger, keyPrefix, close: () => ledger.close() };
}

describeLedgerContract('Redis', () => openOn(redis.url, freshPrefix()), {
  openSecond: (first) => openOn(redis.url, first.keyPrefix),
  // An instance that dies renews its lease no more: once the lease has run out, a live instance refunds its calls.
  crashAndReopen: async (dead) => {
    const live = await openOn(redis.url, dead.keyPrefix);
    await dead.ledger.close();
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS * 3));
    return live;
  },
});

const now = () => Date.now();

async function keyOn(ledger: Ledger, credits: number): Promise<{ key: string; hash: string }> {
  const key = generateApiKey();
  await ledger.insert(newKeyRecord({ credits }, hashApiKey(key), displayPrefix(key), now()));
  return { key, hash: hashApiKey(key) };
}

/** Every string stored under the prefix: names, values, hash fields and stream entries. */
async function everythingStored(client: Redis, keyPrefix: string): Promise<string[]> {
  const seen: string[] = [];
  for (const name of await client.keys(`{${keyPrefix}}*`)) {
    seen.push(name);
    const type = await client.type(name);
    if (type === 'string') seen.push((await client.get(name)) ?? '');
    else if (type === 'hash') seen.push(...Object.entries(await client.hgetall(name)).flat());
    else if (type === 'set') seen.push(...(await client.smembers(name)));
    else if (type === 'zset') seen.push(...(await client.zrange(name, '0', '-1')));
    else if (type === 'list') seen.push(...(await client.lrange(name, 0, -1)));
    else if (type === 'stream') for (const [, fields] of await client.xrange(name, '-', '+')) seen.push(...fields);
  }
  return seen;
}

test('Redis holds the hashes of keys, never the keys themselves', async () => {
  const opened = await openOn(redis.url, freshPrefix());
  const client = new Redis(redis.url);
  try {
    const { ledger } = opened;
    const { key, hash } = await keyOn(ledger, 10);
    const admission = await ledger.admit(new PolicyEngine(policy()), { record: await ledger.findByHash(hash), presentedKey: true, clientIp: '127.0.0.1' }, [{ tool: 'echo', argBytes: 0 }], now());
    await ledger.settle(admission.reservation!, admission.reservation!.charges[0]!, null, now());
    const stored = await everythingStored(client, opened.keyPrefix);
    assert.ok(stored.some((text) => text.includes(hash)), 'the hash is what keys are found by');
    assert.deepEqual(stored.filter((text) => text.includes(key.slice(displayPrefix(key).length))), []);
  } finally {
    client.disconnect();
    await opened.close();
  }
});

test('a call costs at most two Redis round trips once its key is known (the admission and the settlement), a batch too', async () => {
  // A lease long enough that no heartbeat falls within the count.
  const opened = await openOn(redis.url, freshPrefix(), 60_000);
  try {
    const { ledger } = opened;
    const { hash } = await keyOn(ledger, 1000);
    const engine = new PolicyEngine(policy());
    const call = async (tools: string[]) => {
      const admission = await ledger.admit(engine, { record: await ledger.findByHash(hash), presentedKey: true, clientIp: '127.0.0.1' }, tools.map((tool) => ({ tool, argBytes: 0 })), now());
      await Promise.all(admission.reservation!.charges.map((charge) => ledger.settle(admission.reservation!, charge, null, now())));
    };
    await call(['warm-up']);
    const singles = await countCommands(redis.url, async () => {
      for (let index = 0; index < 20; index++) await call(['echo']);
    });
    const batches = await countCommands(redis.url, async () => {
      for (let index = 0; index < 20; index++) await call(['echo', 'echo', 'echo', 'echo']);
    });
    assert.ok(singles.sent / 20 <= 2, `${singles.sent / 20} commands per single call: ${JSON.stringify(singles.sentByName)}`);
    assert.ok(batches.sent / 20 <= 2, `${batches.sent / 20} commands per batch of 4: ${JSON.stringify(batches.sentByName)}`);
  } finally {
    await opened.close();
  }
});

test('while Redis cannot be reached, admissions are refused as unavailable within a bound; once it is back, the ledger goes on by itself', async () => {
  // With its AOF, Redis comes back with the key.
  const own = await RedisServer.start({ appendOnly: true });
  const opened = await openOn(own.url, freshPrefix());
  try {
    const { ledger } = opened;
    const { hash } = await keyOn(ledger, 10);
    const engine = new PolicyEngine(policy());
    const admit = async () => ledger.admit(engine, { record: await ledger.findByHash(hash), presentedKey: true, clientIp: '127.0.0.1' }, [{ tool: 'echo', argBytes: 0 }], now());
    const known = await ledger.findByHash(hash);
    await own.crash();
    const started = Date.now();
    await assert.rejects(ledger.admit(engine, { record: known, presentedKey: true, clientIp: '127.0.0.1' }, [{ tool: 'echo', argBytes: 0 }], now()), LedgerUnavailableError);
    await ledger.findByHash(hashApiKey(generateApiKey())).then(
      () => assert.fail('an unknown hash cannot be looked up while Redis is down'),
      (error: unknown) => assert.ok(error instanceof LedgerUnavailableError, `a lookup fails as unavailable, not with ${String(error)}`),
    );
    assert.ok(Date.now() - started < 5000, 'refused within 5 s');
    assert.ok(ledger.failure, 'the ledger says why it refuses charges');
    await own.restart();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const outcome = await admit().then(
        (admission) => admission,
        (error: Error) => error,
      );
      if (!(outcome instanceof Error)) {
        assert.ok(outcome.reservation);
        break;
      }
      assert.ok(Date.now() < deadline, `the ledger did not recover: ${outcome.message}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(ledger.failure, undefined);
  } finally {
    await opened.close();
    await own.stop();
  }
});
