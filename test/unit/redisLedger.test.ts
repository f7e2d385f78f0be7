import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { PolicyEngine } from '../../server/src/gate/policyEngine.ts';
import { utcDay, utcMonth } from '../../server/src/gate/quota.ts';
import type { CallRequest, KeyRecord, Policy } from '../../server/src/gate/types.ts';
import { LedgerUnavailableError, type Reservation } from '../../server/src/store/contract.ts';
import { openRedisLedger, type RedisLedgerOptions } from '../../server/src/store/redis/connection.ts';
import type { RedisLedger } from '../../server/src/store/redis/ledger.ts';
import { openStateFile } from '../../server/src/store/open.ts';
import { PRELUDE } from '../../server/src/store/redis/lua/prelude.ts';
import { defineScripts } from '../../server/src/store/redis/scripts.ts';
import { Settler, UNRECORDED_REASON } from '../../server/src/store/redis/settler.ts';
import { exportRedisToState, importStateToRedis } from '../../server/src/store/redis/transfer.ts';
import type { UsageEvent } from '../../server/src/store/types.ts';
import { tempDir } from '../helpers/tmp.ts';
import { RedisServer } from '../helpers/redis.ts';
import { keyRecord, policy } from '../helpers/records.ts';

let server: RedisServer;
let prefixes = 0;
const open: RedisLedger[] = [];

before(async () => {
  server = await RedisServer.start();
});

after(async () => {
  await Promise.all(open.map((ledger) => ledger.close()));
  await server.stop();
});

/** A ledger on `server` (the shared one by default); `prefix` shares state with another ledger. */
async function ledgerOn(prefix: string, options: Partial<RedisLedgerOptions> = {}, on: RedisServer = server): Promise<RedisLedger> {
  const ledger = await openRedisLedger({ url: on.url, keyPrefix: prefix, leaseMs: 60_000, ...options });
  open.push(ledger);
  return ledger;
}

function newPrefix(): string {
  return `t${process.pid}-${++prefixes}`;
}

function newKey(overrides: Partial<KeyRecord> = {}): Omit<KeyRecord, 'id'> {
  const { id: _, ...fields } = keyRecord(overrides);
  return { ...fields, keyHash: `${fields.keyHash}-${Math.random().toString(36).slice(2)}` };
}

const calls = (...tools: string[]): CallRequest[] => tools.map((tool) => ({ tool, argBytes: 0 }));

async function admitAs(ledger: RedisLedger, engine: PolicyEngine, hash: string, requests: readonly CallRequest[]) {
  const record = await ledger.findByHash(hash);
  return ledger.admit(engine, { record, presentedKey: true, clientIp: undefined }, requests, Date.now());
}

async function settleAll(ledger: RedisLedger, reservation: Reservation | undefined, refundReason: string | null = null): Promise<void> {
  if (!reservation) return;
  await Promise.all(reservation.charges.map((charge) => ledger.settle(reservation, charge, refundReason, Date.now())));
}

async function stored(ledger: RedisLedger, id: number): Promise<KeyRecord> {
  const [record] = (await ledger.listKeys({})).filter((key) => key.id === id);
  assert.ok(record, `key ${id} is stored`);
  return record;
}

async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('Redis ledger: admission', () => {
  test('200 concurrent admissions from two instances spend exactly the 50 credits there are', async () => {
    const prefix = newPrefix();
    const a = await ledgerOn(prefix);
    const b = await ledgerOn(prefix);
    const key = await a.insert(newKey({ credits: 50 }));
    const engine = new PolicyEngine(policy());
    const batches = Array.from({ length: 200 }, (_, i) => calls(...Array.from({ length: 1 + (i % 3) }, (_, j) => `tool${j}`)));
    const admissions = await Promise.all(batches.map((batch, i) => admitAs(i % 2 ? a : b, engine, key.keyHash, batch)));
    let served = 0;
    for (const { decision, reservation } of admissions) {
      if (!decision.allAllowed) continue;
      assert.ok(reservation);
      served += reservation.charges.reduce((sum, charge) => sum + charge.credits, 0);
      assert.ok(reservation.record.credits >= 0, 'a balance never goes below 0');
    }
    await Promise.all(admissions.map(({ reservation }, i) => settleAll(i % 2 ? a : b, reservation)));
    assert.equal(served, 50);
    const after = await stored(a, key.id);
    assert.equal(after.credits, 0);
    assert.equal(after.totalSpent, 50);
    const events = await a.usage({ limit: 1000 });
    assert.equal(events.filter((event) => event.status === 'charged').length, 50, 'every served call has its charged event');
    assert.equal(events.filter((event) => event.status === 'denied').length, admissions.filter((admission) => !admission.decision.allAllowed).length);
    assert.deepEqual(await a.keyTotals(), { keys: 1, activeKeys: 1, totalCredits: 0, totalSpent: 50, totalCalls: 50 });
  });

  test('a batch is admitted whole or not at all, and its refusal reads as the pure policy words it', async () => {
    const ledger = await ledgerOn(newPrefix());
    const key = await ledger.insert(newKey({ credits: 2 }));
    const engine = new PolicyEngine(policy());
    const { decision, reservation } = await admitAs(ledger, engine, key.keyHash, calls('a', 'b', 'c'));
    assert.equal(reservation, undefined);
    assert.equal(decision.allAllowed, false);
    const pure = new PolicyEngine(policy()).evaluateBatch({ record: { ...key, id: key.id }, presentedKey: true, clientIp: undefined }, calls('a', 'b', 'c'), Date.now());
    assert.ok(!decision.allAllowed && !pure.allAllowed);
    assert.equal(decision.message, pure.message);
    assert.equal(decision.legacyReason, 'insufficient_credits: need 3, have 2');
    assert.equal(decision.failedIndex, 2);
    assert.equal((await stored(ledger, key.id)).credits, 2, 'nothing was debited');
    const [event] = await ledger.usage({ limit: 10 });
    assert.deepEqual([event?.status, event?.tool, event?.reason], ['denied', 'c', 'insufficient_credits']);
    assert.deepEqual(await ledger.denyReasons(), new Map([['insufficient_credits', 1]]));
    assert.equal((await ledger.toolStats()).get('c')?.denied, 1);
  });

  test('quotas and the spending limit are checked in Redis with the policy\'s words', async () => {
    const ledger = await ledgerOn(newPrefix());
    const key = await ledger.insert(newKey({ credits: 100, spendingLimit: 0, quota: { dailyCallLimit: 2, monthlyCallLimit: 0, dailyCreditLimit: 0, monthlyCreditLimit: 0 } }));
    const engine = new PolicyEngine(policy());
    for (let i = 0; i < 2; i++) await settleAll(ledger, (await admitAs(ledger, engine, key.keyHash, calls('t'))).reservation);
    const { decision } = await admitAs(ledger, engine, key.keyHash, calls('t'));
    assert.ok(!decision.allAllowed);
    assert.equal(decision.legacyReason, 'daily_call_quota_exceeded: 2/2 calls today');
    const capped = await ledger.insert(newKey({ credits: 100, spendingLimit: 1 }));
    const refused = await admitAs(ledger, engine, capped.keyHash, calls('t', 't'));
    assert.ok(!refused.decision.allAllowed);
    assert.equal(refused.decision.reason, 'spending_limit_exceeded');
  });

  test('in shadow mode a failing check is recorded as shadow and the calls go ahead uncharged', async () => {
    const ledger = await ledgerOn(newPrefix());
    const key = await ledger.insert(newKey({ credits: 1 }));
    const engine = new PolicyEngine(policy({ shadowMode: true }));
    const { decision, reservation } = await admitAs(ledger, engine, key.keyHash, calls('a', 'b'));
    assert.ok(decision.allAllowed);
    assert.equal(decision.shadowDenial?.reason, 'insufficient_credits');
    assert.equal(reservation, undefined);
    assert.equal((await stored(ledger, key.id)).credits, 1);
    assert.deepEqual((await ledger.usage({ limit: 10 })).map((event) => event.status), ['shadow']);
  });

  test('rate limits hold across instances: per key and per key and tool', async () => {
    const prefix = newPrefix();
    const a = await ledgerOn(prefix);
    const b = await ledgerOn(prefix);
    const rules: Policy = policy({ globalRateLimitPerMin: 10, toolPricing: { slow: { rateLimitPerMin: 3 } } });
    const engine = new PolicyEngine(rules);
    const key = await a.insert(newKey({ credits: 1000 }));
    const slow = await Promise.all(Array.from({ length: 8 }, (_, i) => admitAs(i % 2 ? a : b, engine, key.keyHash, calls('slow'))));
    assert.equal(slow.filter((admission) => admission.decision.allAllowed).length, 3);
    const refused = slow.find((admission) => !admission.decision.allAllowed)!.decision;
    assert.ok(!refused.allAllowed);
    assert.equal(refused.reason, 'tool_rate_limited');
    assert.ok((refused.retryAfterSeconds ?? 0) >= 1);
    const fast = await Promise.all(Array.from({ length: 20 }, (_, i) => admitAs(i % 2 ? a : b, engine, key.keyHash, calls('fast'))));
    assert.equal(fast.filter((admission) => admission.decision.allAllowed).length, 7, '10 per minute, 3 taken by the slow tool');
    const last = fast.at(-1)!.decision;
    assert.ok(!last.allAllowed && last.reason === 'rate_limited');
  });

  test('an admin change on one instance applies to the next admission on another, before any message reaches it', async () => {
    const prefix = newPrefix();
    const a = await ledgerOn(prefix);
    const b = await ledgerOn(prefix);
    const key = await a.insert(newKey({ credits: 10 }));
    const engine = new PolicyEngine(policy());
    const cachedOnB = (await b.findByHash(key.keyHash))!;
    await a.update(key.id, (draft) => {
      draft.deniedTools = ['search'];
    });
    // The record B decided on before the change: its rev is the old one, so Redis answers 'stale'.
    const { decision } = await b.admit(engine, { record: cachedOnB, presentedKey: true, clientIp: undefined }, calls('search'), Date.now());
    assert.ok(!decision.allAllowed);
    assert.equal(decision.reason, 'tool_denied');
    await a.update(key.id, (draft) => {
      draft.active = false;
    });
    const revoked = await b.admit(engine, { record: cachedOnB, presentedKey: true, clientIp: undefined }, calls('other'), Date.now());
    assert.ok(!revoked.decision.allAllowed);
    assert.equal(revoked.decision.reason, 'key_revoked');
    assert.equal((await stored(a, key.id)).credits, 10);
  });

  test('a top-up adds to the balance as it stands, calls in flight included', async () => {
    const prefix = newPrefix();
    const a = await ledgerOn(prefix);
    const b = await ledgerOn(prefix);
    const key = await a.insert(newKey({ credits: 5 }));
    const engine = new PolicyEngine(policy());
    const { reservation } = await admitAs(b, engine, key.keyHash, calls('x', 'y'));
    const topped = await a.update(key.id, (draft) => {
      draft.credits += 100;
    });
    assert.equal(topped?.credits, 103);
    await settleAll(b, reservation);
    assert.equal((await stored(a, key.id)).credits, 103);
    assert.equal((await a.keyTotals()).totalCredits, 103);
  });

  test('rotation retires the old hash for good: it is neither found nor stored again', async () => {
    const prefix = newPrefix();
    const a = await ledgerOn(prefix);
    const b = await ledgerOn(prefix);
    const fields = newKey();
    const key = await a.insert(fields);
    assert.ok(await b.findByHash(key.keyHash));
    await a.update(key.id, (draft) => {
      draft.keyHash = `${key.keyHash}-rotated`;
    });
    assert.equal(await a.findByHash(key.keyHash), undefined);
    await eventually(async () => (await b.findByHash(key.keyHash)) === undefined, 'instance B to drop the rotated hash');
    assert.equal((await b.findByHash(`${key.keyHash}-rotated`))?.id, key.id);
    assert.equal(await a.insertMissing([fields]), 0);
    await assert.rejects(a.insert(fields), /retired by a rotation/);
    assert.equal(await a.countKeys({}), 1);
  });
});

describe('Redis ledger: settlement', () => {
  test('the first settlement of a charge wins: the same one again is a no-op, the other one is refused and changes nothing', async () => {
    const ledger = await ledgerOn(newPrefix());
    const key = await ledger.insert(newKey({ credits: 5 }));
    const engine = new PolicyEngine(policy({ defaultCreditsPerCall: 2 }));
    const kept = (await admitAs(ledger, engine, key.keyHash, calls('t'))).reservation;
    const refunded = (await admitAs(ledger, engine, key.keyHash, calls('t'))).reservation;
    assert.ok(kept && refunded);
    await ledger.settle(kept, kept.charges[0]!, null, Date.now());
    await ledger.settle(kept, kept.charges[0]!, null, Date.now());
    await ledger.settle(refunded, refunded.charges[0]!, 'failed', Date.now());
    await ledger.settle(refunded, refunded.charges[0]!, 'failed', Date.now());
    await assert.rejects(ledger.settle(kept, kept.charges[0]!, 'the answer was lost', Date.now()), /kept already/, 'a kept charge is final');
    await assert.rejects(ledger.settle(refunded, refunded.charges[0]!, null, Date.now()), LedgerUnavailableError, 'a keep after a refund is refused: the answer must be withheld');
    const after = await stored(ledger, key.id);
    assert.deepEqual([after.credits, after.totalSpent, after.totalCalls, after.usage.dailyCalls], [3, 2, 1, 1]);
    assert.deepEqual((await ledger.toolStats()).get('t'), { calls: 1, credits: 2, denied: 0 });
    assert.deepEqual((await ledger.usage({ limit: 10 })).map((event) => event.status), ['charged', 'refunded']);
  });

  test("a keep that ran but whose answer was lost is withheld by the settler's retry: refunded, naming the charged event it reverses", async () => {
    const prefix = newPrefix();
    const ledger = await ledgerOn(prefix);
    const key = await ledger.insert(newKey({ credits: 5 }));
    const engine = new PolicyEngine(policy({ defaultCreditsPerCall: 2 }));
    const { reservation } = await admitAs(ledger, engine, key.keyHash, calls('t'));
    assert.ok(reservation);
    const client = new Redis(server.url);
    try {
      const scripts = defineScripts(client, `{${prefix}}`);
      let lost = 0;
      // The first script call runs in Redis, but its answer never reaches the gate (as on a timeout).
      const settler = new Settler(async (argv) => {
        const reply = await scripts.settle(...argv);
        if (lost++ === 0) throw new Error('Command timed out');
        return reply;
      }, () => {});
      await assert.rejects(settler.settle({ reservationId: reservation.id, index: 1, action: 'keep', reason: '' }), /timed out/);
      await eventually(() => settler.pendingRepairs === 0, 'the withheld keep to be refunded');
      settler.stop();
    } finally {
      client.disconnect();
    }
    const [charged, reversal] = await ledger.usage({ limit: 10 });
    assert.deepEqual([charged?.status, charged?.credits, reversal?.status, reversal?.credits], ['charged', 2, 'refunded', 0]);
    assert.equal(reversal?.reason, `${UNRECORDED_REASON}; the charge of event ${charged?.id} is refunded`);
    const after = await stored(ledger, key.id);
    assert.deepEqual([after.credits, after.totalSpent, after.totalCalls, after.usage.dailyCalls, after.usage.dailyCredits], [5, 0, 0, 0, 0]);
    assert.deepEqual((await ledger.toolStats()).get('t'), { calls: 0, credits: 0, denied: 0 });
    assert.deepEqual(await ledger.keyTotals(), { keys: 1, activeKeys: 1, totalCredits: 5, totalSpent: 0, totalCalls: 0 });
    await assert.rejects(ledger.settle(reservation, reservation.charges[0]!, null, Date.now()), LedgerUnavailableError, 'a withheld charge cannot be kept again');
    await ledger.settle(reservation, reservation.charges[0]!, 'failed', Date.now());
    assert.equal((await ledger.usage({ limit: 10 })).length, 2, 'nor refunded twice');
    assert.equal((await stored(ledger, key.id)).credits, 5);
  });

  test('a keep Redis refuses (out of memory) is withheld too: once Redis takes writes again the charge is refunded, nothing stays in flight', async () => {
    const own = await RedisServer.start();
    const admin = new Redis(own.url);
    try {
      const prefix = newPrefix();
      const ledger = await ledgerOn(prefix, {}, own);
      const key = await ledger.insert(newKey({ credits: 5 }));
      const { reservation } = await admitAs(ledger, new PolicyEngine(policy({ defaultCreditsPerCall: 2 })), key.keyHash, calls('t'));
      assert.ok(reservation);
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
      await assert.rejects(ledger.settle(reservation, reservation.charges[0]!, null, Date.now()), /OOM|memory/);
      assert.equal(ledger.pendingRefunds, 1, 'the refund is owed');
      await admin.config('SET', 'maxmemory', '0');
      await eventually(() => ledger.pendingRefunds === 0, 'the refund to be taken');
      const after = await stored(ledger, key.id);
      assert.deepEqual([after.credits, after.totalSpent, after.totalCalls], [5, 0, 0]);
      assert.equal(await admin.hget(`{${prefix}}:key:${key.id}`, 'inflightCalls'), '0');
      assert.deepEqual((await ledger.usage({ limit: 10 })).map((event) => [event.status, event.reason]), [['refunded', UNRECORDED_REASON]]);
    } finally {
      admin.disconnect();
      await own.stop();
    }
  });

  test('a dead instance\'s reservations are refunded as interrupted once its lease has run out', async () => {
    const prefix = newPrefix();
    // The live instance's own heartbeat (a third of its lease) does not run during the test: the reaper runs when asked.
    const live = await ledgerOn(prefix, { leaseMs: 60_000 });
    const dying = await ledgerOn(prefix, { leaseMs: 300 });
    const key = await live.insert(newKey({ credits: 10 }));
    const engine = new PolicyEngine(policy());
    const { reservation } = await admitAs(dying, engine, key.keyHash, calls('a', 'b'));
    assert.ok(reservation);
    await dying.close();
    assert.equal(await live.recoverInterrupted(Date.now()), 0, 'not before the lease runs out');
    await sleep(400);
    assert.equal(await live.recoverInterrupted(Date.now()), 2);
    const after = await stored(live, key.id);
    assert.deepEqual([after.credits, after.totalSpent, after.totalCalls], [10, 0, 0]);
    const events = await live.usage({ limit: 10 });
    assert.deepEqual(events.map((event) => event.status), ['interrupted', 'interrupted']);
    assert.match(events[0]!.reason ?? '', /lease ran out/);
    assert.equal(await live.recoverInterrupted(Date.now()), 0);
  });

  test('a single call costs two script calls in Redis and nothing else, and so does a batch', async () => {
    const ledger = await ledgerOn(newPrefix());
    const key = await ledger.insert(newKey({ credits: 10 }));
    const engine = new PolicyEngine(policy({ globalRateLimitPerMin: 100 }));
    await settleAll(ledger, (await admitAs(ledger, engine, key.keyHash, calls('warm'))).reservation);
    const admin = new Redis(server.url);
    const watcher = new Redis(server.url);
    const monitor = await watcher.monitor();
    const topLevel: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      // Commands run by a script come from "lua"; the monitor's own connection sends nothing.
      if (source !== 'lua') topLevel.push(args[0]!.toLowerCase());
    });
    try {
      await admin.config('RESETSTAT');
      const record = await ledger.findByHash(key.keyHash);
      const { reservation } = await ledger.admit(engine, { record, presentedKey: true, clientIp: undefined }, calls('t'), Date.now());
      await settleAll(ledger, reservation);
      const batch = await ledger.admit(engine, { record, presentedKey: true, clientIp: undefined }, calls('t', 'u', 'v'), Date.now());
      await settleAll(ledger, batch.reservation);
      const stats = await admin.info('commandstats');
      assert.match(stats, /^cmdstat_evalsha:calls=4,/m);
      assert.doesNotMatch(stats, /^cmdstat_eval:/m);
      await eventually(() => topLevel.includes('info'), 'the monitor to see the INFO command');
      assert.deepEqual(topLevel.filter((command) => command !== 'config' && command !== 'info'), ['evalsha', 'evalsha', 'evalsha', 'evalsha']);
    } finally {
      monitor.disconnect();
      watcher.disconnect();
      admin.disconnect();
    }
  });
});

describe('Redis ledger: outages', () => {
  test('with Redis down calls are refused naming Redis, failure is set, and both clear once it is back', async () => {
    const own = await RedisServer.start();
    try {
      const ledger = await ledgerOn(newPrefix(), {}, own);
      const key = await ledger.insert(newKey({ credits: 10 }));
      const engine = new PolicyEngine(policy());
      const record = await ledger.findByHash(key.keyHash);
      await own.kill();
      await eventually(() => ledger.failure !== undefined, 'the ledger to notice');
      assert.match(ledger.failure!.message, new RegExp(`Redis at redis://127\\.0\\.0\\.1:${own.port}`));
      await assert.rejects(
        ledger.admit(engine, { record, presentedKey: true, clientIp: undefined }, calls('t'), Date.now()),
        (error: Error) => error instanceof LedgerUnavailableError && error.message.includes(`127.0.0.1:${own.port}`),
      );
      await own.restart();
      await eventually(() => ledger.failure === undefined, 'the ledger to reconnect', 15_000);
      // The data is gone (no AOF): the key is stored again, and calls go through.
      const again = await ledger.insert(newKey({ credits: 3 }));
      const { decision } = await admitAs(ledger, engine, again.keyHash, calls('t'));
      assert.ok(decision.allAllowed);
    } finally {
      await own.stop();
    }
  });

  for (const outage of ['stopped', 'paused'] as const) {
    test(`with Redis ${outage}, lookups, admin reads and admin writes fail as unavailable, naming Redis and its address`, async () => {
      const own = await RedisServer.start();
      try {
        const ledger = await ledgerOn(newPrefix(), { commandTimeoutMs: 300 }, own);
        const key = await ledger.insert(newKey({ credits: 10 }));
        if (outage === 'stopped') await own.kill();
        else own.pause();
        const unavailable = (error: unknown) => error instanceof LedgerUnavailableError && error.message.includes(`Redis at redis://127.0.0.1:${own.port}`);
        const operations: Record<string, () => Promise<unknown>> = {
          findByHash: () => ledger.findByHash(`${key.keyHash}-unknown`),
          findById: () => ledger.findById(key.id),
          listKeys: () => ledger.listKeys({}),
          listKeysByTag: () => ledger.listKeys({ tags: { team: 'a' } }),
          countKeys: () => ledger.countKeys({}),
          namespaces: () => ledger.namespaces(),
          keyTotals: () => ledger.keyTotals(),
          usage: () => ledger.usage({ limit: 10 }),
          usageSince: () => ledger.usage({ limit: 10, sinceMs: 0 }),
          toolStats: () => ledger.toolStats(),
          denyReasons: () => ledger.denyReasons(),
          firstEventIdAtOrAfter: () => ledger.firstEventIdAtOrAfter(0),
          deleteOldestEvents: () => ledger.deleteOldestEvents(10, 10),
          recoverInterrupted: () => ledger.recoverInterrupted(Date.now()),
          insert: () => ledger.insert(newKey()),
          insertMissing: () => ledger.insertMissing([newKey()]),
          update: () => ledger.update(key.id, (draft) => void (draft.credits += 5)),
        };
        const outcomes = await Promise.all(Object.entries(operations).map(async ([name, run]) => [name, await run().then(() => 'resolved', (error: unknown) => (unavailable(error) ? 'unavailable' : String(error)))]));
        assert.deepEqual(Object.fromEntries(outcomes), Object.fromEntries(Object.keys(operations).map((name) => [name, 'unavailable'])));
      } finally {
        if (outage === 'paused') own.resume();
        await own.stop();
      }
    });
  }

  test('Redis stopped for 3 s with calls in flight: after it resumes nothing is charged twice and the balance is what was kept', async () => {
    const own = await RedisServer.start({ appendOnly: true });
    try {
      const prefix = newPrefix();
      const ledger = await ledgerOn(prefix, { commandTimeoutMs: 300 }, own);
      const key = await ledger.insert(newKey({ credits: 1000 }));
      const engine = new PolicyEngine(policy());
      let kept = 0;
      let running = true;
      const worker = async () => {
        while (running) {
          try {
            const { reservation } = await admitAs(ledger, engine, key.keyHash, calls('t'));
            await sleep(20);
            if (reservation) {
              await ledger.settle(reservation, reservation.charges[0]!, null, Date.now());
              kept++;
            }
          } catch (error) {
            assert.ok(error instanceof LedgerUnavailableError, String(error));
            await sleep(50);
          }
        }
      };
      const workers = Array.from({ length: 8 }, worker);
      await sleep(300);
      own.pause();
      await sleep(3000);
      own.resume();
      await sleep(500);
      running = false;
      await Promise.all(workers);
      await eventually(() => ledger.pendingRefunds === 0 && ledger.failure === undefined, 'the refunds owed to land');
      assert.ok(kept > 0);
      const after = await stored(ledger, key.id);
      assert.equal(after.credits, 1000 - kept);
      assert.equal(after.totalSpent, kept);
      const events = await ledger.usage({ limit: 100_000 });
      const charged = new Set(events.filter((event) => event.status === 'charged').map((event) => event.id));
      const reversed = events.flatMap((event) => {
        const reversal = /^(.*); the charge of event (\d+) is refunded$/.exec(event.reason ?? '');
        return event.status === 'refunded' && reversal?.[1] === UNRECORDED_REASON ? [Number(reversal[2])] : [];
      });
      assert.ok(reversed.every((id) => charged.has(id)), 'a withheld keep reverses a charged event');
      assert.equal(new Set(reversed).size, reversed.length, 'no charge is reversed twice');
      assert.equal(charged.size - reversed.length, kept, 'every kept charge is charged once; every withheld one reversed');
      const raw = new Redis(own.url);
      try {
        assert.deepEqual(await raw.hmget(`{${prefix}}:key:${key.id}`, 'inflightCalls', 'inflightCredits'), ['0', '0'], 'nothing is left in flight');
      } finally {
        raw.disconnect();
      }
    } finally {
      await own.stop();
    }
  });
});

describe('Redis ledger: migration', () => {
  test('SQLite → Redis → SQLite keeps keys with their ids and balances, events with their ids, and tool stats', async () => {
    const dir = tempDir();
    const source = path.join(dir, 'state.db');
    const state = openStateFile(source);
    const first = state.store.insertKey(newKey({ credits: 7, totalSpent: 3, totalCalls: 3, tags: { team: 'a' } }));
    const second = state.store.insertKey(newKey({ credits: 1, namespace: 'other', active: false }));
    const event = (id: number, status: UsageEvent['status'], credits: number, reason: string | null = null): UsageEvent => ({
      id, at: Date.now() - 1000 + id, keyId: first.id, keyPrefix: first.keyPrefix, keyName: first.name, namespace: 'default', tool: 'search', credits, status, reason,
    });
    state.store.commit({
      balances: [],
      inserts: [event(1, 'charged', 1), event(2, 'charged', 2), event(3, 'denied', 0, 'insufficient_credits')],
      toolStats: { stats: { search: { calls: 2, credits: 3, denied: 1 } }, throughEventId: 3 },
    });
    state.journal?.close();
    state.store.close();

    const prefix = newPrefix();
    assert.deepEqual(await importStateToRedis(source, { url: server.url, keyPrefix: prefix }), { keys: 2, events: 3 });
    await assert.rejects(importStateToRedis(source, { url: server.url, keyPrefix: prefix }), /already holds PayGate state/);
    const ledger = await ledgerOn(prefix);
    assert.deepEqual(await ledger.listKeys({}), [first, second]);
    assert.deepEqual((await ledger.usage({ limit: 10 })).map((e) => [e.id, e.status, e.credits]), [[1, 'charged', 1], [2, 'charged', 2], [3, 'denied', 0]]);
    assert.deepEqual(await ledger.denyReasons(), new Map([['insufficient_credits', 1]]));
    assert.deepEqual(await ledger.keyTotals(), { keys: 2, activeKeys: 1, totalCredits: 8, totalSpent: 3, totalCalls: 3 });
    const { reservation } = await admitAs(ledger, new PolicyEngine(policy()), first.keyHash, calls('search'));
    await settleAll(ledger, reservation);
    const [newest] = (await ledger.usage({ afterId: 3, limit: 10 }));
    assert.equal(newest?.id, 4, 'event ids go on from the imported ones');
    const inserted = await ledger.insert(newKey());
    assert.equal(inserted.id, second.id + 1, 'key ids go on from the imported ones');

    const target = path.join(dir, 'exported.db');
    assert.deepEqual(await exportRedisToState({ url: server.url, keyPrefix: prefix }, target), { keys: 3, events: 4 });
    const exported = openStateFile(target);
    try {
      assert.deepEqual(exported.store.listKeys({}), await ledger.listKeys({}));
      assert.deepEqual(exported.store.usage({ limit: 10 }), await ledger.usage({ limit: 10 }));
      assert.deepEqual(exported.store.toolStats().get('search'), { calls: 3, credits: 4, denied: 1 });
      assert.equal(exported.store.nextEventId(), 5);
    } finally {
      exported.journal?.close();
      exported.store.close();
    }
    await assert.rejects(exportRedisToState({ url: server.url, keyPrefix: prefix }, target), /exists already/);
  });
});

describe('Redis ledger: Lua mirrors the pure policy', () => {
  test('the UTC day and month computed in Lua are those of quota.ts, across leap years and month ends', async () => {
    const client = new Redis(server.url);
    try {
      const samples = [0, Date.UTC(2000, 1, 29, 23, 59, 59, 999), Date.UTC(2024, 11, 31, 23, 59, 59, 999), Date.UTC(2100, 2, 1), Date.UTC(2026, 0, 1) - 1];
      for (let i = 0; i < 200; i++) samples.push(Math.floor(Math.random() * Date.UTC(2200, 0, 1)));
      const script = `${PRELUDE}\nlocal replies = {}\nfor i = 1, #ARGV do local d, m = civil(tonumber(ARGV[i])); replies[i] = d .. ' ' .. m end\nreturn replies`;
      const replies = (await client.eval(script, 1, '{civil}', ...samples.map(String))) as string[];
      assert.deepEqual(replies, samples.map((ms) => `${utcDay(ms)} ${utcMonth(ms)}`));
    } finally {
      client.disconnect();
    }
  });

  test('balances survive a Redis restart from its AOF with appendfsync always', async () => {
    const own = await RedisServer.start({ appendOnly: true });
    try {
      const prefix = newPrefix();
      const ledger = await ledgerOn(prefix, {}, own);
      const key = await ledger.insert(newKey({ credits: 20 }));
      const engine = new PolicyEngine(policy());
      for (let i = 0; i < 5; i++) await settleAll(ledger, (await admitAs(ledger, engine, key.keyHash, calls('t'))).reservation);
      await own.crash();
      await own.restart();
      await eventually(() => ledger.failure === undefined, 'the ledger to reconnect', 15_000);
      const after = await stored(ledger, key.id);
      assert.deepEqual([after.credits, after.totalSpent, after.totalCalls], [15, 5, 5]);
      assert.equal((await ledger.usage({ limit: 10 })).length, 5);
    } finally {
      await own.stop();
    }
  });
});
