import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { PolicyEngine, type BatchDecision } from '../../server/src/gate/policyEngine.ts';
import type { CallRequest, Caller, KeyRecord, Policy } from '../../server/src/gate/types.ts';
import { displayPrefix, generateApiKey, hashApiKey } from '../../server/src/keys/apiKey.ts';
import { newKeyRecord, type KeyFields } from '../../server/src/keys/fields.ts';
import type { Admission, Ledger, Reservation } from '../../server/src/store/contract.ts';
import type { UsageEvent } from '../../server/src/store/types.ts';
import { policy as policyWith } from '../helpers/records.ts';

/**
 * The behaviour every `Ledger` store must have, run against each store by its own runner
 * (test/unit/ledgerContract.*.test.ts). The tests go through the `Ledger` interface only, with the
 * pure `PolicyEngine` deciding, as the gate does; where a store's decision could differ from the
 * policy engine's (Redis decides inside a script), the engine's own decision is the expectation.
 */

/** A ledger opened for one test, and how to let go of it (and whatever the runner made for it). */
export interface OpenedLedger {
  ledger: Ledger;
  close(): Promise<void>;
}

export interface LedgerContractOptions<T extends OpenedLedger> {
  /** Another instance on the same shared state as `first` (a second gate on the same Redis). Stores one process owns have none. */
  openSecond?: (first: T) => Promise<OpenedLedger>;
  /**
   * The instance dies with calls admitted and not settled (no close, nothing more written); resolves
   * to a live instance on the same state, ready to refund them with `recoverInterrupted`.
   */
  crashAndReopen?: (opened: T) => Promise<OpenedLedger>;
}

/** The prices used throughout: `tick` costs the default 1, `echo` 2, `search` 5. */
const PRICES: Policy['toolPricing'] = { echo: { creditsPerCall: 2 }, search: { creditsPerCall: 5 } };

function pricing(overrides: Partial<Policy> = {}): Policy {
  return policyWith({ toolPricing: PRICES, ...overrides });
}

interface StoredKey {
  key: string;
  hash: string;
  id: number;
}

async function addKey(ledger: Ledger, fields: KeyFields = {}, now = Date.now()): Promise<StoredKey> {
  const key = generateApiKey();
  const record = await ledger.insert(newKeyRecord({ name: 'contract', credits: 10, ...fields }, hashApiKey(key), displayPrefix(key), now));
  assert.equal(record.keyHash, hashApiKey(key));
  return { key, hash: record.keyHash, id: record.id };
}

/**
 * The key as it stands now, calls in flight included (`listKeys`), copied. Lookups by hash or id
 * serve the gate's hot path and may answer from a cache whose balance only the next admission
 * brings up to date; the decisions never rely on it.
 */
async function stored(ledger: Ledger, id: number): Promise<KeyRecord> {
  const record = (await ledger.listKeys({})).find((candidate) => candidate.id === id);
  assert.ok(record, `key ${id} is stored`);
  return structuredClone(record);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Who calls with the key whose hash is `hash`, looked up as the gate does for each request. */
async function callerOf(ledger: Ledger, hash: string, clientIp = '127.0.0.1'): Promise<Caller> {
  const record = await ledger.findByHash(hash);
  return { record, presentedKey: true, clientIp };
}

function calls(...tools: string[]): CallRequest[] {
  return tools.map((tool) => ({ tool, argBytes: 0 }));
}

async function admit(ledger: Ledger, engine: PolicyEngine, hash: string, tools: string[], now: number): Promise<Admission> {
  return ledger.admit(engine, await callerOf(ledger, hash), calls(...tools), now);
}

function admitted(admission: Admission): Reservation {
  assert.equal(admission.decision.allAllowed, true, `admitted, not refused: ${JSON.stringify(denialOf(admission.decision))}`);
  assert.ok(admission.reservation, 'an admitted call under a key has a reservation');
  return admission.reservation;
}

async function settleAll(ledger: Ledger, reservation: Reservation, refundReason: string | null, now: number): Promise<void> {
  await Promise.all(reservation.charges.map((charge) => ledger.settle(reservation, charge, refundReason, now)));
}

/** Admits `tools` as one batch and keeps every charge. */
async function spend(ledger: Ledger, engine: PolicyEngine, hash: string, tools: string[], now: number): Promise<void> {
  await settleAll(ledger, admitted(await admit(ledger, engine, hash, tools, now)), null, now);
}

/** What a refusal says: the same for every store. */
function denialOf(decision: BatchDecision) {
  if (decision.allAllowed) return undefined;
  const { reason, message, legacyReason, failedIndex } = decision;
  return { reason, message, legacyReason, failedIndex };
}

/**
 * Refuses `tools` under the key exactly as the pure policy engine refuses them on the key as
 * stored, debits nothing, and records the refusal as a `denied` event of the key.
 */
async function assertRefusedAsTheEngineSays(ledger: Ledger, policy: Policy, key: StoredKey, tools: string[], now: number, clientIp?: string): Promise<BatchDecision> {
  const caller = await callerOf(ledger, key.hash, clientIp);
  const before = await stored(ledger, key.id);
  const expected = new PolicyEngine(policy).evaluateBatch({ ...caller, record: before }, calls(...tools), now);
  assert.equal(expected.allAllowed, false, 'the scenario is a refusal for the policy engine');
  const deniedBefore = (await events(ledger, { keyId: key.id })).filter((event) => event.status === 'denied').length;
  const { decision, reservation } = await ledger.admit(new PolicyEngine(policy), caller, calls(...tools), now);
  assert.deepEqual(denialOf(decision), denialOf(expected));
  assert.equal(reservation, undefined);
  const after = await stored(ledger, key.id);
  assert.deepEqual(
    [after.credits, after.totalSpent, after.totalCalls, after.usage.dailyCalls, after.usage.dailyCredits],
    [before.credits, before.totalSpent, before.totalCalls, before.usage.dailyCalls, before.usage.dailyCredits],
    'a refusal debits nothing',
  );
  const failed = denialOf(expected)!;
  const denied = await eventually(
    () => events(ledger, { keyId: key.id }),
    (list) => list.filter((event) => event.status === 'denied').length === deniedBefore + 1,
    'the refusal is recorded as a denied event',
  );
  const event = denied.filter((e) => e.status === 'denied').at(-1)!;
  assert.deepEqual([event.tool, event.reason, event.credits], [tools[failed.failedIndex], failed.reason, 0]);
  return decision;
}

function events(ledger: Ledger, query: { keyId?: number; namespace?: string } = {}): Promise<UsageEvent[]> {
  return ledger.usage({ limit: 10_000, ...query });
}

/** What a store does off the caller's path (refusals are recorded without waiting) shows within a second. */
async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) assert.fail(`${what}; last seen: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const statuses = (list: readonly UsageEvent[]) => list.map((event) => event.status);

export function describeLedgerContract<T extends OpenedLedger>(name: string, open: () => Promise<T>, options: LedgerContractOptions<T> = {}): void {
  /** Runs `body` on a freshly opened ledger and lets go of it whatever happens. */
  async function withLedger(body: (ledger: Ledger, opened: T) => Promise<void>): Promise<void> {
    const opened = await open();
    try {
      await body(opened.ledger, opened);
    } finally {
      await opened.close();
    }
  }

  describe(`Ledger contract: ${name}`, () => {
    test('a new ledger is healthy, says where its state is, and has nothing in flight to recover', () =>
      withLedger(async (ledger) => {
        assert.equal(ledger.failure, undefined);
        assert.ok(ledger.location.length > 0);
        assert.equal(await ledger.recoverInterrupted(Date.now()), 0);
        assert.deepEqual(await ledger.listKeys({}), []);
        assert.deepEqual(await events(ledger), []);
      }));

    describe('admission and settlement', () => {
      test('an admitted call is debited at once; kept, it stays spent and has a charged event', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const key = await addKey(ledger, { credits: 10, name: 'alice', namespace: 'acme' }, now);
          const reservation = admitted(await admit(ledger, new PolicyEngine(pricing()), key.hash, ['echo'], now));
          assert.deepEqual(reservation.charges, [{ tool: 'echo', credits: 2 }]);
          assert.equal(reservation.record.credits, 8, "the reservation's record is the key after the debit");
          assert.equal(typeof reservation.id, 'string');
          const inFlight = await stored(ledger, key.id);
          assert.deepEqual([inFlight.credits, inFlight.totalSpent, inFlight.totalCalls], [8, 2, 1]);
          assert.deepEqual([inFlight.usage.dailyCalls, inFlight.usage.dailyCredits, inFlight.usage.monthlyCalls, inFlight.usage.monthlyCredits], [1, 2, 1, 2]);
          assert.ok(inFlight.lastUsedAt !== null && Math.abs(inFlight.lastUsedAt - now) < 1000, 'last used now');

          const settledFrom = Date.now();
          await ledger.settle(reservation, reservation.charges[0]!, null, Date.now());
          const settledBy = Date.now();
          const kept = await stored(ledger, key.id);
          assert.deepEqual([kept.credits, kept.totalSpent, kept.totalCalls], [8, 2, 1]);
          const [event, ...rest] = await events(ledger);
          assert.deepEqual(rest, []);
          assert.ok(event && event.at >= settledFrom - 1000 && event.at <= settledBy + 1000, `the event is stamped when it was settled: ${event?.at}`);
          assert.deepEqual(
            { ...event, id: 0, at: 0 },
            { id: 0, at: 0, keyId: key.id, keyPrefix: displayPrefix(key.key), keyName: 'alice', namespace: 'acme', tool: 'echo', credits: 2, status: 'charged', reason: null },
          );
        }));

      test('a refunded call gives back its credits, totals and quota use, and has a refunded event with the reason', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const key = await addKey(ledger, { credits: 10 }, now);
          const reservation = admitted(await admit(ledger, new PolicyEngine(pricing()), key.hash, ['search'], now));
          await ledger.settle(reservation, reservation.charges[0]!, 'the backend failed', now);
          const record = await stored(ledger, key.id);
          assert.deepEqual([record.credits, record.totalSpent, record.totalCalls], [10, 0, 0]);
          assert.deepEqual([record.usage.dailyCalls, record.usage.dailyCredits, record.usage.monthlyCalls, record.usage.monthlyCredits], [0, 0, 0, 0]);
          assert.deepEqual(
            (await events(ledger)).map((event) => [event.status, event.tool, event.credits, event.reason]),
            [['refunded', 'search', 0, 'the backend failed']],
          );
        }));

      test('settling a charge again changes nothing, whether it was kept or refunded first', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const engine = new PolicyEngine(pricing());
          const key = await addKey(ledger, { credits: 20 }, now);
          const kept = admitted(await admit(ledger, engine, key.hash, ['echo'], now));
          const refunded = admitted(await admit(ledger, engine, key.hash, ['search'], now));
          await ledger.settle(kept, kept.charges[0]!, null, now);
          await ledger.settle(refunded, refunded.charges[0]!, 'failed', now);
          // The same outcome again is a no-op; the other outcome may be refused (the caller then withholds
          // an answer it should not give), but changes nothing either.
          await Promise.all([ledger.settle(kept, kept.charges[0]!, null, now), ledger.settle(refunded, refunded.charges[0]!, 'failed', now)]);
          await Promise.allSettled([ledger.settle(kept, kept.charges[0]!, 'failed', now), ledger.settle(refunded, refunded.charges[0]!, null, now)]);
          const record = await stored(ledger, key.id);
          assert.deepEqual([record.credits, record.totalSpent, record.totalCalls], [18, 2, 1]);
          assert.deepEqual(statuses(await events(ledger)).sort(), ['charged', 'refunded']);
        }));

      test('the equal charges of one batch are settled one by one, each once', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const key = await addKey(ledger, { credits: 10 }, now);
          const reservation = admitted(await admit(ledger, new PolicyEngine(pricing()), key.hash, ['echo', 'echo', 'echo'], now));
          assert.equal(reservation.record.credits, 4);
          await ledger.settle(reservation, reservation.charges[0]!, null, now);
          await ledger.settle(reservation, reservation.charges[1]!, 'failed', now);
          await ledger.settle(reservation, reservation.charges[2]!, null, now);
          await ledger.settle(reservation, reservation.charges[0]!, null, now);
          const record = await stored(ledger, key.id);
          assert.deepEqual([record.credits, record.totalSpent, record.totalCalls], [6, 4, 2]);
          assert.deepEqual(statuses(await events(ledger)), ['charged', 'refunded', 'charged']);
        }));

      test('a batch is admitted all or nothing: a refusal names the first call that does not fit and debits nothing', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const policy = pricing();
          const key = await addKey(ledger, { credits: 10 }, now);
          const decision = await assertRefusedAsTheEngineSays(ledger, policy, key, ['echo', 'search', 'search'], now);
          assert.equal(denialOf(decision)?.failedIndex, 2);
          assert.match(decision.allAllowed ? '' : decision.message, /these 3 calls cost 12, the key has 10/);

          const reservation = admitted(await admit(ledger, new PolicyEngine(policy), key.hash, ['echo', 'search'], now));
          assert.equal(reservation.charges.reduce((sum, charge) => sum + charge.credits, 0), 7);
          assert.equal(admittedTotal(await ledger.admit(new PolicyEngine(policy), await callerOf(ledger, key.hash), calls('search'), now)), 0);
          assert.equal((await stored(ledger, key.id)).credits, 3);
        }));

      test('an unknown key is refused as invalid and nothing is recorded', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const caller: Caller = { record: await ledger.findByHash(hashApiKey(generateApiKey())), presentedKey: true, clientIp: '127.0.0.1' };
          assert.equal(caller.record, undefined);
          const { decision, reservation } = await ledger.admit(new PolicyEngine(pricing()), caller, calls('echo'), now);
          assert.equal(denialOf(decision)?.reason, 'invalid_api_key');
          assert.equal(reservation, undefined);
          await new Promise((resolve) => setTimeout(resolve, 50));
          assert.deepEqual(await events(ledger), []);
        }));
    });

    describe('refusals give the reasons and messages of the policy engine, and are recorded', () => {
      const now = Date.now();
      const past = new Date(now - 60_000).toISOString();
      const scenarios: { name: string; policy?: Partial<Policy>; fields: KeyFields; before?: string[][]; call: string[]; clientIp?: string; reason: string }[] = [
        { name: 'not enough credits', fields: { credits: 3 }, call: ['search'], reason: 'insufficient_credits' },
        { name: 'not enough credits after spending', fields: { credits: 6 }, before: [['search']], call: ['echo'], reason: 'insufficient_credits' },
        { name: 'spending limit', fields: { credits: 100, spendingLimit: 6 }, before: [['search']], call: ['echo'], reason: 'spending_limit_exceeded' },
        { name: 'daily call quota', fields: { credits: 100, quota: { dailyCallLimit: 2 } }, before: [['tick'], ['tick']], call: ['tick'], reason: 'daily_call_quota_exceeded' },
        { name: 'daily call quota, batch', fields: { credits: 100, quota: { dailyCallLimit: 3 } }, before: [['tick']], call: ['tick', 'tick', 'tick'], reason: 'daily_call_quota_exceeded' },
        { name: 'monthly call quota', fields: { credits: 100, quota: { monthlyCallLimit: 1 } }, before: [['tick']], call: ['tick'], reason: 'monthly_call_quota_exceeded' },
        { name: 'daily credit quota', fields: { credits: 100, quota: { dailyCreditLimit: 6 } }, before: [['search']], call: ['echo'], reason: 'daily_credit_quota_exceeded' },
        { name: 'monthly credit quota', fields: { credits: 100, quota: { monthlyCreditLimit: 6 } }, before: [['echo', 'echo']], call: ['search'], reason: 'monthly_credit_quota_exceeded' },
        { name: "the gate's global quota", policy: { globalQuota: { dailyCallLimit: 1, monthlyCallLimit: 0, dailyCreditLimit: 0, monthlyCreditLimit: 0 } }, fields: { credits: 100 }, before: [['tick']], call: ['tick'], reason: 'daily_call_quota_exceeded' },
        { name: 'a tool outside the allowed tools', fields: { allowedTools: ['echo'] }, call: ['echo', 'search'], reason: 'tool_not_allowed' },
        { name: 'a denied tool', fields: { deniedTools: ['search'] }, call: ['search'], reason: 'tool_denied' },
        { name: 'an expired key', fields: { expiresAt: past }, call: ['echo'], reason: 'api_key_expired' },
        { name: 'an address outside the allowlist', fields: { ipAllowlist: ['10.0.0.0/8'] }, call: ['echo'], clientIp: '192.0.2.7', reason: 'ip_not_allowed' },
      ];
      for (const scenario of scenarios) {
        test(`${scenario.name}: ${scenario.reason}`, () =>
          withLedger(async (ledger) => {
            const policy = pricing(scenario.policy);
            const engine = new PolicyEngine(policy);
            const key = await addKey(ledger, scenario.fields, now);
            for (const tools of scenario.before ?? []) await spend(ledger, engine, key.hash, tools, now);
            const decision = await assertRefusedAsTheEngineSays(ledger, policy, key, scenario.call, now, scenario.clientIp);
            assert.equal(denialOf(decision)?.reason, scenario.reason);
            assert.equal((await ledger.denyReasons()).get(scenario.reason), 1);
            assert.equal((await ledger.denyReasons('default')).get(scenario.reason), 1);
          }));
      }

      test('a revoked key: key_revoked', () =>
        withLedger(async (ledger) => {
          const key = await addKey(ledger, { credits: 10 }, now);
          await ledger.update(key.id, (draft) => {
            draft.active = false;
          });
          await assertRefusedAsTheEngineSays(ledger, pricing(), key, ['echo'], now);
        }));
    });

    describe('rate limits', () => {
      test('the per-key limit admits its burst, then refuses with rate_limited and when to retry', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const policy = pricing({ globalRateLimitPerMin: 3 });
          const engine = new PolicyEngine(policy);
          const key = await addKey(ledger, { credits: 100 }, now);
          for (let call = 0; call < 3; call++) await spend(ledger, engine, key.hash, ['tick'], now);
          const { decision, reservation } = await admit(ledger, engine, key.hash, ['tick'], now);
          assert.equal(reservation, undefined);
          assert.deepEqual(denialOf(decision), {
            reason: 'rate_limited',
            message: 'rate limit reached: this key may make 3 calls per minute',
            legacyReason: 'rate_limited: 3 calls/min exceeded',
            failedIndex: 0,
          });
          assertRetryAfter(decision);
          assert.equal((await stored(ledger, key.id)).credits, 97);
          await eventually(() => ledger.denyReasons(), (reasons) => reasons.get('rate_limited') === 1, 'the refusal is counted');
        }));

      test('the per-tool limit holds for that tool alone', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const engine = new PolicyEngine(pricing({ toolPricing: { ...PRICES, search: { creditsPerCall: 5, rateLimitPerMin: 2 } } }));
          const key = await addKey(ledger, { credits: 100 }, now);
          await spend(ledger, engine, key.hash, ['search'], now);
          await spend(ledger, engine, key.hash, ['search'], now);
          const { decision } = await admit(ledger, engine, key.hash, ['search'], now);
          assert.deepEqual(denialOf(decision), {
            reason: 'tool_rate_limited',
            message: 'rate limit reached: this key may call "search" 2 times per minute',
            legacyReason: 'tool_rate_limited: search limited to 2 calls/min',
            failedIndex: 0,
          });
          assertRetryAfter(decision);
          await spend(ledger, engine, key.hash, ['echo', 'echo', 'echo'], now);
          const other = await addKey(ledger, { credits: 100 }, now);
          await spend(ledger, engine, other.hash, ['search', 'search'], now);
        }));

      test('a refused batch takes no rate-limit capacity: the calls that fit still pass afterwards', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const engine = new PolicyEngine(pricing({ globalRateLimitPerMin: 3 }));
          const key = await addKey(ledger, { credits: 100 }, now);
          const { decision } = await admit(ledger, engine, key.hash, ['tick', 'tick', 'tick', 'tick'], now);
          assert.equal(denialOf(decision)?.failedIndex, 3);
          assert.equal(denialOf(decision)?.reason, 'rate_limited');
          await spend(ledger, engine, key.hash, ['tick', 'tick', 'tick'], now);
          assert.equal(denialOf((await admit(ledger, engine, key.hash, ['tick'], now)).decision)?.reason, 'rate_limited');
        }));

      test('a batch refused for credits takes no rate-limit capacity either', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const engine = new PolicyEngine(pricing({ globalRateLimitPerMin: 2 }));
          const key = await addKey(ledger, { credits: 6 }, now);
          assert.equal(denialOf((await admit(ledger, engine, key.hash, ['search', 'echo'], now)).decision)?.reason, 'insufficient_credits');
          await spend(ledger, engine, key.hash, ['echo', 'echo'], now);
        }));
    });

    describe('concurrent admissions', () => {
      test('many concurrent single calls on a 50-credit key admit exactly 50 credits of calls', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const engine = new PolicyEngine(pricing());
          const key = await addKey(ledger, { credits: 50 }, now);
          const admissions = await Promise.all(Array.from({ length: 120 }, () => admit(ledger, engine, key.hash, ['tick'], now)));
          assert.equal(admissions.reduce((sum, admission) => sum + admittedTotal(admission), 0), 50);
          for (const admission of admissions) if (!admission.reservation) assert.equal(denialOf(admission.decision)?.reason, 'insufficient_credits');
          await Promise.all(admissions.flatMap((admission) => (admission.reservation ? [settleAll(ledger, admission.reservation, null, now)] : [])));
          const record = await stored(ledger, key.id);
          assert.deepEqual([record.credits, record.totalSpent, record.totalCalls], [0, 50, 50]);
          const charged = (await events(ledger, { keyId: key.id })).filter((event) => event.status === 'charged');
          assert.equal(charged.length, 50);
        }));

      test('concurrent batches and single calls never overspend: what was admitted and what is left make the 50 credits', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const engine = new PolicyEngine(pricing());
          const key = await addKey(ledger, { credits: 50 }, now);
          const admissions = await Promise.all(
            Array.from({ length: 80 }, (_, index) => admit(ledger, engine, key.hash, index % 4 === 0 ? ['echo', 'tick', 'echo'] : ['echo'], now)),
          );
          const total = admissions.reduce((sum, admission) => sum + admittedTotal(admission), 0);
          const record = await stored(ledger, key.id);
          assert.ok(record.credits >= 0 && record.credits < 2, `only crumbs are left: ${record.credits}`);
          assert.equal(total + record.credits, 50);
          assert.equal(record.totalSpent, total);
        }));

      if (options.openSecond) {
        const openSecond = options.openSecond;
        test('two instances admitting concurrently on one key never overspend it', () =>
          withLedger(async (ledger, opened) => {
            const second = await openSecond(opened);
            try {
              const now = Date.now();
              const key = await addKey(ledger, { credits: 50 }, now);
              const engines = [new PolicyEngine(pricing()), new PolicyEngine(pricing())];
              const ledgers = [ledger, second.ledger];
              const admissions = await Promise.all(Array.from({ length: 120 }, (_, index) => admit(ledgers[index % 2]!, engines[index % 2]!, key.hash, ['tick'], now)));
              assert.equal(admissions.reduce((sum, admission) => sum + admittedTotal(admission), 0), 50);
              assert.equal((await stored(second.ledger, key.id)).credits, 0);
              assert.equal((await stored(ledger, key.id)).credits, 0);
            } finally {
              await second.close();
            }
          }));

        test('the per-key and per-tool rate limits hold across instances', () =>
          withLedger(async (ledger, opened) => {
            const second = await openSecond(opened);
            try {
              const now = Date.now();
              const policy = pricing({ globalRateLimitPerMin: 4, toolPricing: { ...PRICES, search: { creditsPerCall: 5, rateLimitPerMin: 2 } } });
              const [a, b] = [new PolicyEngine(policy), new PolicyEngine(policy)];
              const key = await addKey(ledger, { credits: 100 }, now);
              await spend(ledger, a, key.hash, ['search'], now);
              assert.equal(denialOf((await admit(second.ledger, b, key.hash, ['search', 'search'], now)).decision)?.reason, 'tool_rate_limited');
              await spend(second.ledger, b, key.hash, ['search'], now);
              assert.equal(denialOf((await admit(ledger, a, key.hash, ['search'], now)).decision)?.reason, 'tool_rate_limited');
              await spend(ledger, a, key.hash, ['tick'], now);
              await spend(second.ledger, b, key.hash, ['tick'], now);
              assert.equal(denialOf((await admit(ledger, a, key.hash, ['tick'], now)).decision)?.reason, 'rate_limited');
              assert.equal(denialOf((await admit(second.ledger, b, key.hash, ['tick'], now)).decision)?.reason, 'rate_limited');
            } finally {
              await second.close();
            }
          }));
      }
    });

    describe('shadow mode', () => {
      test('a call that would be refused goes ahead unpaid: a shadow event, nothing charged, no denial counted', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const policy = pricing({ shadowMode: true });
          const key = await addKey(ledger, { credits: 1 }, now);
          const { decision, reservation } = await admit(ledger, new PolicyEngine(policy), key.hash, ['search'], now);
          assert.equal(decision.allAllowed, true);
          assert.equal(decision.allAllowed && decision.shadowDenial?.reason, 'insufficient_credits');
          assert.equal(reservation, undefined);
          const record = await stored(ledger, key.id);
          assert.deepEqual([record.credits, record.totalSpent, record.totalCalls], [1, 0, 0]);
          const list = await eventually(() => events(ledger), (found) => found.length === 1, 'the shadow event is recorded');
          assert.deepEqual(list.map((event) => [event.status, event.tool, event.reason, event.credits]), [['shadow', 'search', 'insufficient_credits', 0]]);
          assert.equal((await ledger.denyReasons()).size, 0);
        }));
    });

    describe('admin changes', () => {
      test('a top-up is added to the balance as it stands, losing no debit made meanwhile', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const engine = new PolicyEngine(pricing());
          const key = await addKey(ledger, { credits: 50 }, now);
          const work: Promise<unknown>[] = [];
          for (let round = 0; round < 5; round++) {
            for (let call = 0; call < 4; call++) work.push(admit(ledger, engine, key.hash, ['tick'], now).then((admission) => settleAll(ledger, admitted(admission), null, now)));
            work.push(
              ledger.update(key.id, (draft) => {
                draft.credits += 10;
              }),
            );
          }
          await Promise.all(work);
          const record = await stored(ledger, key.id);
          assert.deepEqual([record.credits, record.totalSpent, record.totalCalls], [80, 20, 20]);
        }));

      test('an update returns the key as it now stands, and undefined for a key that does not exist', () =>
        withLedger(async (ledger) => {
          const key = await addKey(ledger, { credits: 5 });
          const updated = await ledger.update(key.id, (draft) => {
            draft.credits += 7;
            draft.name = 'renamed';
            draft.spendingLimit = 40;
            draft.tags = { team: 'red' };
          });
          assert.deepEqual([updated?.credits, updated?.name, updated?.spendingLimit, updated?.tags], [12, 'renamed', 40, { team: 'red' }]);
          const record = await stored(ledger, key.id);
          assert.deepEqual([record.credits, record.name, record.spendingLimit, record.tags], [12, 'renamed', 40, { team: 'red' }]);
          assert.equal(await ledger.update(key.id + 1000, () => assert.fail('no key to change')), undefined);
        }));

      test('a revoked key is found, inactive, and refused on its next call', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const engine = new PolicyEngine(pricing());
          const key = await addKey(ledger, { credits: 10 }, now);
          await spend(ledger, engine, key.hash, ['tick'], now);
          await ledger.update(key.id, (draft) => {
            draft.active = false;
          });
          assert.equal((await ledger.findByHash(key.hash))?.active, false);
          assert.equal(denialOf((await admit(ledger, engine, key.hash, ['tick'], now)).decision)?.reason, 'key_revoked');
        }));

      test('a rotated key is found by its new hash only, keeps its balance, and its old hash cannot come back', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const engine = new PolicyEngine(pricing());
          const key = await addKey(ledger, { credits: 10 }, now);
          await spend(ledger, engine, key.hash, ['echo'], now);
          const fresh = generateApiKey();
          await ledger.update(key.id, (draft) => {
            draft.keyHash = hashApiKey(fresh);
            draft.keyPrefix = displayPrefix(fresh);
          });
          assert.equal(await ledger.findByHash(key.hash), undefined);
          const rotated = await ledger.findByHash(hashApiKey(fresh));
          assert.deepEqual([rotated?.id, rotated?.credits, rotated?.totalSpent], [key.id, 8, 2]);
          assert.equal(denialOf((await admit(ledger, engine, key.hash, ['tick'], now)).decision)?.reason, 'invalid_api_key');
          await spend(ledger, engine, hashApiKey(fresh), ['tick'], now);
          const comeback = newKeyRecord({ credits: 1000 }, key.hash, displayPrefix(key.key), now);
          assert.equal(await ledger.insertMissing([comeback]), 0);
          assert.equal(await ledger.findByHash(key.hash), undefined);
          assert.equal(await ledger.countKeys({}), 1);
        }));

      test('a change of allowed tools or limits applies to the next call', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const engine = new PolicyEngine(pricing());
          const key = await addKey(ledger, { credits: 100 }, now);
          await spend(ledger, engine, key.hash, ['search'], now);
          await ledger.update(key.id, (draft) => {
            draft.allowedTools = ['echo'];
          });
          assert.equal(denialOf((await admit(ledger, engine, key.hash, ['search'], now)).decision)?.reason, 'tool_not_allowed');
          await ledger.update(key.id, (draft) => {
            draft.allowedTools = [];
            draft.spendingLimit = 7;
          });
          assert.equal(denialOf((await admit(ledger, engine, key.hash, ['search'], now)).decision)?.reason, 'spending_limit_exceeded');
          await spend(ledger, engine, key.hash, ['echo'], now);
        }));

      if (options.openSecond) {
        const openSecond = options.openSecond;
        test("an instance's top-up, revocation, rotation and tool change apply on another instance's very next call", () =>
          withLedger(async (ledger, opened) => {
            const second = await openSecond(opened);
            try {
              const now = Date.now();
              const b = new PolicyEngine(pricing());
              const key = await addKey(ledger, { credits: 2 }, now);
              await spend(second.ledger, b, key.hash, ['echo'], now);
              assert.equal(denialOf((await admit(second.ledger, b, key.hash, ['echo'], now)).decision)?.reason, 'insufficient_credits');

              await ledger.update(key.id, (draft) => {
                draft.credits += 10;
              });
              await spend(second.ledger, b, key.hash, ['echo'], now);
              assert.equal((await stored(second.ledger, key.id)).credits, 8);

              await ledger.update(key.id, (draft) => {
                draft.deniedTools = ['echo'];
              });
              assert.equal(denialOf((await admit(second.ledger, b, key.hash, ['echo'], now)).decision)?.reason, 'tool_denied');

              const fresh = generateApiKey();
              await ledger.update(key.id, (draft) => {
                draft.keyHash = hashApiKey(fresh);
                draft.deniedTools = [];
              });
              assert.equal(denialOf((await admit(second.ledger, b, key.hash, ['echo'], now)).decision)?.reason, 'invalid_api_key');
              await spend(second.ledger, b, hashApiKey(fresh), ['echo'], now);

              await ledger.update(key.id, (draft) => {
                draft.active = false;
              });
              assert.equal(denialOf((await admit(second.ledger, b, hashApiKey(fresh), ['echo'], now)).decision)?.reason, 'key_revoked');
              assert.equal((await stored(ledger, key.id)).credits, 6);
              await eventually(() => second.ledger.denyReasons(), (reasons) => reasons.get('key_revoked') === 1, 'the other instance counts the refusal');
            } finally {
              await second.close();
            }
          }));
      }
    });

    describe('inserting keys', () => {
      test('insertMissing adds only keys whose hash is not stored, and leaves stored keys exactly as they are', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const key = await addKey(ledger, { credits: 10, name: 'kept' }, now);
          await spend(ledger, new PolicyEngine(pricing()), key.hash, ['echo'], now);
          const before = await stored(ledger, key.id);
          const newcomers = [generateApiKey(), generateApiKey()].map((raw) => newKeyRecord({ credits: 3 }, hashApiKey(raw), displayPrefix(raw), now));
          const again = newKeyRecord({ credits: 999, name: 'imposter' }, key.hash, displayPrefix(key.key), now);
          assert.equal(await ledger.insertMissing([newcomers[0]!, again, newcomers[1]!]), 2);
          assert.deepEqual(await stored(ledger, key.id), before);
          assert.equal(await ledger.countKeys({}), 3);
          assert.equal(await ledger.insertMissing(newcomers), 0);
          assert.equal(await ledger.countKeys({}), 3);
          for (const record of newcomers) assert.equal((await ledger.findByHash(record.keyHash))?.credits, 3);
        }));

      test('insertMissing stores all of its keys at once: nobody sees some of them without the others', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const records = Array.from({ length: 300 }, () => {
            const raw = generateApiKey();
            return newKeyRecord({ credits: 1 }, hashApiKey(raw), displayPrefix(raw), now);
          });
          const seen = new Set<number>();
          let inserting = true;
          const watching = (async () => {
            while (inserting) {
              seen.add(await ledger.countKeys({}));
              await new Promise((resolve) => setImmediate(resolve));
            }
          })();
          const inserted = ledger.insertMissing(records).finally(() => (inserting = false));
          assert.equal(await inserted, 300);
          await watching;
          seen.add(await ledger.countKeys({}));
          assert.deepEqual([...seen].filter((count) => count !== 0 && count !== 300), []);
          assert.equal((await ledger.listKeys({})).length, 300);
        }));

      test('keys get distinct ids in the order they are inserted', () =>
        withLedger(async (ledger) => {
          const ids: number[] = [];
          for (let index = 0; index < 5; index++) ids.push((await addKey(ledger)).id);
          assert.deepEqual([...ids].sort((x, y) => x - y), ids);
          assert.equal(new Set(ids).size, 5);
          assert.deepEqual((await ledger.listKeys({})).map((record) => record.id), ids);
        }));
    });

    describe('reads', () => {
      test('keys are listed and counted by namespace and tags, a page at a time, in id order, with calls in flight included', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const keys: StoredKey[] = [];
          for (let index = 0; index < 6; index++) {
            keys.push(await addKey(ledger, { namespace: index < 4 ? 'acme' : 'other', tags: { team: index % 2 === 0 ? 'red' : 'blue', tier: 'pro' }, credits: 10 }, now));
          }
          const ids = (list: readonly KeyRecord[]) => list.map((record) => record.id);
          const acme = keys.slice(0, 4).map((key) => key.id);
          assert.deepEqual(ids(await ledger.listKeys({ namespace: 'acme' })), acme);
          assert.deepEqual(ids(await ledger.listKeys({ namespace: 'acme', limit: 2, offset: 1 })), acme.slice(1, 3));
          assert.deepEqual(ids(await ledger.listKeys({ limit: 2, offset: 5 })), [keys[5]!.id]);
          assert.deepEqual(ids(await ledger.listKeys({ tags: { team: 'red' } })), [keys[0]!.id, keys[2]!.id, keys[4]!.id]);
          assert.deepEqual(ids(await ledger.listKeys({ namespace: 'acme', tags: { team: 'red', tier: 'pro' } })), [keys[0]!.id, keys[2]!.id]);
          assert.deepEqual(await ledger.listKeys({ tags: { team: 'green' } }), []);
          assert.deepEqual(await ledger.listKeys({ namespace: 'nobody' }), []);
          assert.equal(await ledger.countKeys({}), 6);
          assert.equal(await ledger.countKeys({ namespace: 'acme' }), 4);
          assert.equal(await ledger.countKeys({ namespace: 'other', tags: { team: 'blue' } }), 1);
          assert.equal(await ledger.countKeys({ tags: { tier: 'pro' } }), 6);

          const reservation = admitted(await admit(ledger, new PolicyEngine(pricing()), keys[1]!.hash, ['search'], now));
          const listed = (await ledger.listKeys({ namespace: 'acme' })).find((record) => record.id === keys[1]!.id);
          assert.deepEqual([listed?.credits, listed?.totalSpent], [5, 5]);
          await settleAll(ledger, reservation, null, now);
        }));

      test('namespaces and key totals add up the keys as they stand', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const engine = new PolicyEngine(pricing());
          const a = await addKey(ledger, { namespace: 'acme', credits: 10 }, now);
          const b = await addKey(ledger, { namespace: 'acme', credits: 20 }, now);
          const c = await addKey(ledger, { namespace: 'zeta', credits: 7 }, now);
          await spend(ledger, engine, a.hash, ['search', 'tick'], now);
          await spend(ledger, engine, c.hash, ['echo'], now);
          await ledger.update(b.id, (draft) => {
            draft.active = false;
          });
          assert.deepEqual(await ledger.namespaces(), [
            { namespace: 'acme', keyCount: 2, activeKeys: 1, totalCredits: 24, totalSpent: 6 },
            { namespace: 'zeta', keyCount: 1, activeKeys: 1, totalCredits: 5, totalSpent: 2 },
          ]);
          assert.deepEqual(await ledger.keyTotals(), { keys: 3, activeKeys: 2, totalCredits: 29, totalSpent: 8, totalCalls: 3 });
          assert.deepEqual(await ledger.keyTotals('acme'), { keys: 2, activeKeys: 1, totalCredits: 24, totalSpent: 6, totalCalls: 2 });
          assert.deepEqual(await ledger.keyTotals('nobody'), { keys: 0, activeKeys: 0, totalCredits: 0, totalSpent: 0, totalCalls: 0 });
          await ledger.update(a.id, (draft) => {
            draft.credits += 100;
          });
          assert.equal((await ledger.keyTotals('acme')).totalCredits, 124);
        }));

      test('usage is read in id order, by time, key, namespace and cursor, a page at a time', () =>
        withLedger(async (ledger) => {
          const engine = new PolicyEngine(pricing());
          const a = await addKey(ledger, { namespace: 'acme', credits: 100 });
          const b = await addKey(ledger, { namespace: 'zeta', credits: 100 });
          for (let step = 0; step < 6; step++) {
            await spend(ledger, engine, step % 2 === 0 ? a.hash : b.hash, ['tick'], Date.now());
            await sleep(15);
          }
          const all = await events(ledger);
          assert.equal(all.length, 6);
          for (let index = 1; index < all.length; index++) {
            assert.ok(all[index]!.id > all[index - 1]!.id, 'ids increase');
            assert.ok(all[index]!.at > all[index - 1]!.at, 'events 15 ms apart have increasing times');
          }
          const between = Math.ceil((all[2]!.at + all[3]!.at) / 2);
          assert.deepEqual((await ledger.usage({ limit: 100, sinceMs: all[3]!.at })).map((event) => event.id), all.slice(3).map((event) => event.id));
          assert.deepEqual((await ledger.usage({ limit: 100, sinceMs: between })).map((event) => event.id), all.slice(3).map((event) => event.id));
          assert.deepEqual((await ledger.usage({ limit: 100, keyId: b.id })).map((event) => event.keyId), [b.id, b.id, b.id]);
          assert.deepEqual((await ledger.usage({ limit: 100, namespace: 'acme' })).map((event) => event.id), [all[0]!.id, all[2]!.id, all[4]!.id]);
          assert.deepEqual((await ledger.usage({ limit: 2, afterId: all[1]!.id })).map((event) => event.id), [all[2]!.id, all[3]!.id]);
          assert.deepEqual((await ledger.usage({ limit: 2, keyId: a.id, afterId: all[0]!.id })).map((event) => event.id), [all[2]!.id, all[4]!.id]);
          assert.deepEqual(await ledger.usage({ limit: 10, afterId: all[5]!.id }), []);
          assert.deepEqual(await ledger.usage({ limit: 10, sinceMs: all[5]!.at + 1 }), []);

          const pages: number[] = [];
          for (let cursor: number | undefined; ; ) {
            const page = await ledger.usage({ limit: 4, ...(cursor === undefined ? {} : { afterId: cursor }) });
            if (page.length === 0) break;
            pages.push(...page.map((event) => event.id));
            cursor = page.at(-1)!.id;
          }
          assert.deepEqual(pages, all.map((event) => event.id));
        }));

      test('per-tool stats count kept calls and their credits, and denials; refunds count for nothing', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          const engine = new PolicyEngine(pricing());
          const key = await addKey(ledger, { credits: 12, deniedTools: ['tick'] }, now);
          await spend(ledger, engine, key.hash, ['echo', 'echo', 'search'], now);
          const refunded = admitted(await admit(ledger, engine, key.hash, ['echo'], now));
          await settleAll(ledger, refunded, 'failed', now);
          await admit(ledger, engine, key.hash, ['tick'], now);
          await admit(ledger, engine, key.hash, ['search'], now);
          const stats = await eventually(
            async () => Object.fromEntries(await ledger.toolStats()),
            (found) => (found.search?.denied ?? 0) === 1 && (found.tick?.denied ?? 0) === 1,
            'the refusals are counted',
          );
          assert.deepEqual(stats, {
            echo: { calls: 2, credits: 4, denied: 0 },
            search: { calls: 1, credits: 5, denied: 1 },
            tick: { calls: 0, credits: 0, denied: 1 },
          });
        }));

      test('refusals recorded by the caller are events of the key; denials are counted by reason and namespace, shadows are not', () =>
        withLedger(async (ledger) => {
          const now = Date.now();
          await addKey(ledger, { namespace: 'acme' }, now);
          const record = structuredClone((await ledger.listKeys({}))[0]!);
          ledger.recordRefusal(record, 'echo', 'key_revoked', 'denied', now);
          ledger.recordRefusal(record, 'echo', 'key_revoked', 'denied', now + 1);
          ledger.recordRefusal(record, 'search', 'insufficient_credits', 'shadow', now + 2);
          const list = await eventually(() => events(ledger), (found) => found.length === 3, 'the refusals are recorded');
          assert.deepEqual(
            list.map((event) => [event.status, event.tool, event.reason, event.keyId, event.namespace, event.credits]),
            [
              ['denied', 'echo', 'key_revoked', record.id, 'acme', 0],
              ['denied', 'echo', 'key_revoked', record.id, 'acme', 0],
              ['shadow', 'search', 'insufficient_credits', record.id, 'acme', 0],
            ],
          );
          assert.ok(list.every((event, index) => index === 0 || event.at >= list[index - 1]!.at), 'times never go back');
          assert.deepEqual([...(await ledger.denyReasons())], [['key_revoked', 2]]);
          assert.deepEqual([...(await ledger.denyReasons('acme'))], [['key_revoked', 2]]);
          assert.deepEqual([...(await ledger.denyReasons('default'))], []);
        }));

      test('old events are found by time and deleted oldest first, leaving the denial counts', () =>
        withLedger(async (ledger) => {
          await addKey(ledger);
          const record = structuredClone((await ledger.listKeys({}))[0]!);
          assert.equal(await ledger.deleteOldestEvents(Number.MAX_SAFE_INTEGER, 10), 0);
          for (let step = 0; step < 5; step++) {
            ledger.recordRefusal(record, 'echo', 'rate_limited', 'denied', Date.now());
            await eventually(() => events(ledger), (found) => found.length === step + 1, 'the refusal is recorded');
            await sleep(15);
          }
          const all = await events(ledger);
          assert.ok(all.every((event, index) => index === 0 || event.at > all[index - 1]!.at), 'events 15 ms apart have increasing times');
          assert.equal(await ledger.firstEventIdAtOrAfter(all[2]!.at), all[2]!.id);
          assert.equal(await ledger.firstEventIdAtOrAfter(Math.ceil((all[1]!.at + all[2]!.at) / 2)), all[2]!.id);
          assert.ok((await ledger.firstEventIdAtOrAfter(0)) <= all[0]!.id, 'from the beginning: every event');
          const next = await ledger.firstEventIdAtOrAfter(all[4]!.at + 1);
          assert.ok(next > all[4]!.id, 'past the newest event: the next id to be given out');

          assert.equal(await ledger.deleteOldestEvents(all[3]!.id, 2), 2);
          assert.deepEqual((await events(ledger)).map((event) => event.id), all.slice(2).map((event) => event.id));
          assert.equal(await ledger.deleteOldestEvents(all[3]!.id, 10), 1);
          assert.equal(await ledger.deleteOldestEvents(all[3]!.id, 10), 0);
          assert.deepEqual((await events(ledger)).map((event) => event.id), all.slice(3).map((event) => event.id));
          assert.equal((await ledger.denyReasons()).get('rate_limited'), 5);
          ledger.recordRefusal(record, 'echo', 'rate_limited', 'denied', Date.now());
          const later = await eventually(() => events(ledger), (found) => found.length === 3, 'a new event is recorded');
          assert.ok(later.at(-1)!.id > all[4]!.id, 'ids are never given out twice, even after deletions');
        }));
    });

    test('listeners hear of admissions, settlements, refusals and admin changes until they unsubscribe', () =>
      withLedger(async (ledger) => {
        const now = Date.now();
        const key = await addKey(ledger, { credits: 10 }, now);
        let heard = 0;
        const unsubscribe = ledger.onChange(() => heard++);
        const engine = new PolicyEngine(pricing());
        const heardAfter = async (what: string, act: () => Promise<unknown>) => {
          const before = heard;
          await act();
          await eventually(async () => heard, (count) => count > before, `a listener hears of ${what}`);
        };
        let reservation: Reservation | undefined;
        await heardAfter('an admission', async () => (reservation = admitted(await admit(ledger, engine, key.hash, ['echo'], now))));
        await heardAfter('a settlement', () => settleAll(ledger, reservation!, null, now));
        await heardAfter('a refusal', () => admit(ledger, engine, key.hash, ['search', 'search'], now));
        await heardAfter('a top-up', () =>
          ledger.update(key.id, (draft) => {
            draft.credits += 1;
          }),
        );
        await heardAfter('a new key', () => addKey(ledger));
        unsubscribe();
        const before = heard;
        await spend(ledger, engine, key.hash, ['tick'], now);
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(heard, before);
      }));

    test('over any sequence of calls, refunds and top-ups, decisions are the policy engine\'s and the books balance', async () => {
      type Step =
        | { kind: 'admit'; tools: string[] }
        | { kind: 'settle'; pick: number; keep: boolean }
        | { kind: 'topUp'; credits: number }
        | { kind: 'burst'; count: number };
      const tool = fc.constantFrom('tick', 'echo', 'search');
      const step: fc.Arbitrary<Step> = fc.oneof(
        { weight: 5, arbitrary: fc.record({ kind: fc.constant('admit' as const), tools: fc.array(tool, { minLength: 1, maxLength: 3 }) }) },
        { weight: 5, arbitrary: fc.record({ kind: fc.constant('settle' as const), pick: fc.nat(), keep: fc.boolean() }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('topUp' as const), credits: fc.integer({ min: 1, max: 10 }) }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('burst' as const), count: fc.integer({ min: 2, max: 8 }) }) },
      );
      const fields = fc.record({
        credits: fc.integer({ min: 0, max: 30 }),
        spendingLimit: fc.constantFrom(0, 15, 25),
        dailyCreditLimit: fc.constantFrom(0, 12, 40),
        dailyCallLimit: fc.constantFrom(0, 6, 20),
      });
      await fc.assert(
        fc.asyncProperty(fields, fc.array(step, { minLength: 1, maxLength: 25 }), (initial, steps) =>
          withLedger(async (ledger) => {
            const now = Date.now();
            const policy = pricing();
            const engine = new PolicyEngine(policy);
            const quota = { dailyCallLimit: initial.dailyCallLimit, dailyCreditLimit: initial.dailyCreditLimit };
            const key = await addKey(ledger, { credits: initial.credits, spendingLimit: initial.spendingLimit, quota }, now);
            const inFlight: { reservation: Reservation; charge: Reservation['charges'][number] }[] = [];
            let topUps = 0;
            let kept = 0;
            const check = async () => {
              const record = await stored(ledger, key.id);
              const pending = inFlight.reduce((sum, entry) => sum + entry.charge.credits, 0);
              assert.ok(record.credits >= 0, `the balance never goes negative: ${record.credits}`);
              assert.equal(record.credits + record.totalSpent, initial.credits + topUps, 'credits + spent = initial + top-ups');
              assert.equal(record.totalSpent, kept + pending, 'spent = kept + in flight');
              if (initial.spendingLimit > 0) assert.ok(record.totalSpent <= initial.spendingLimit, 'the spending limit holds');
              if (initial.dailyCreditLimit > 0) assert.ok(record.usage.dailyCredits <= initial.dailyCreditLimit, 'the daily credit quota holds');
              if (initial.dailyCallLimit > 0) assert.ok(record.usage.dailyCalls <= initial.dailyCallLimit, 'the daily call quota holds');
            };
            const take = (admission: Admission) => {
              if (admission.reservation) for (const charge of admission.reservation.charges) inFlight.push({ reservation: admission.reservation, charge });
            };
            for (const action of steps) {
              switch (action.kind) {
                case 'admit': {
                  const caller = await callerOf(ledger, key.hash);
                  const expected = new PolicyEngine(policy).evaluateBatch({ ...caller, record: await stored(ledger, key.id) }, calls(...action.tools), now);
                  const admission = await ledger.admit(engine, caller, calls(...action.tools), now);
                  assert.equal(admission.decision.allAllowed, expected.allAllowed);
                  assert.deepEqual(denialOf(admission.decision), denialOf(expected));
                  take(admission);
                  break;
                }
                case 'burst':
                  for (const admission of await Promise.all(Array.from({ length: action.count }, () => admit(ledger, engine, key.hash, ['echo'], now)))) take(admission);
                  break;
                case 'settle': {
                  if (inFlight.length === 0) break;
                  const [entry] = inFlight.splice(action.pick % inFlight.length, 1);
                  await ledger.settle(entry!.reservation, entry!.charge, action.keep ? null : 'failed', now);
                  if (action.keep) kept += entry!.charge.credits;
                  break;
                }
                case 'topUp':
                  await ledger.update(key.id, (draft) => {
                    draft.credits += action.credits;
                  });
                  topUps += action.credits;
                  break;
              }
              await check();
            }
            const charged = (await events(ledger, { keyId: key.id })).filter((event) => event.status === 'charged');
            assert.equal(charged.reduce((sum, event) => sum + event.credits, 0), kept, 'every kept credit has its charged event');
          }),
        ),
        { numRuns: 30 },
      );
    });

    if (options.crashAndReopen) {
      const crashAndReopen = options.crashAndReopen;
      test('calls admitted by an instance that died are refunded as interrupted, once', async () => {
        const opened = await open();
        const now = Date.now();
        const engine = new PolicyEngine(pricing());
        const key = await addKey(opened.ledger, { credits: 20 }, now);
        await spend(opened.ledger, engine, key.hash, ['echo'], now);
        admitted(await admit(opened.ledger, engine, key.hash, ['search', 'tick'], now));
        admitted(await admit(opened.ledger, engine, key.hash, ['tick'], now));
        const live = await crashAndReopen(opened);
        try {
          // A store may also refund them by itself (Redis reaps dead instances in the background): then nothing is left to count.
          assert.ok([0, 3].includes(await live.ledger.recoverInterrupted(Date.now())), 'the three calls in flight, unless refunded already');
          assert.equal(await live.ledger.recoverInterrupted(Date.now()), 0);
          const record = await stored(live.ledger, key.id);
          assert.deepEqual([record.credits, record.totalSpent, record.totalCalls], [18, 2, 1]);
          const list = await events(live.ledger, { keyId: key.id });
          assert.deepEqual(statuses(list).filter((status) => status !== 'interrupted'), ['charged']);
          assert.ok(statuses(list).includes('interrupted'));
        } finally {
          await live.close();
        }
      });
    }
  });
}

function admittedTotal(admission: Admission): number {
  return admission.reservation ? admission.reservation.charges.reduce((sum, charge) => sum + charge.credits, 0) : 0;
}

function assertRetryAfter(decision: BatchDecision): void {
  const retry = decision.allAllowed ? undefined : decision.retryAfterSeconds;
  assert.ok(retry !== undefined && retry >= 1 && retry <= 60, `a rate-limit refusal says when to retry: ${retry}`);
}
