import assert from 'node:assert/strict';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import fc from 'fast-check';
import { InProcessLedger } from '../../server/src/store/ledger.ts';
import { SqliteLedger } from '../../server/src/store/sqliteLedger.ts';
import { UsageRetention } from '../../server/src/store/retention.ts';
import { openLedger, openStateFile } from '../../server/src/store/open.ts';
import type { Store } from '../../server/src/store/types.ts';
import { keyRecord, NOW } from '../helpers/records.ts';
import { tempDir } from '../helpers/tmp.ts';

const DAY_MS = 86_400_000;

/** What the reports showed when they counted rows: the kept totals must say the same. */
function counted(file: string) {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const namespaces = db
      .prepare(
        `SELECT namespace, count(*) AS keyCount, sum(active) AS activeKeys, sum(credits) AS totalCredits, sum(total_spent) AS totalSpent
         FROM keys GROUP BY namespace ORDER BY namespace`,
      )
      .all()
      .map((row) => ({ ...row }));
    const denied = db.prepare(`SELECT namespace, reason, count(*) AS n FROM events WHERE status = 'denied' GROUP BY namespace, reason`).all();
    const calls = db.prepare('SELECT coalesce(sum(total_calls), 0) AS n FROM keys').get()!.n;
    return { namespaces, denied, calls: Number(calls) };
  } finally {
    db.close();
  }
}

function kept(store: Store) {
  return { namespaces: store.namespaces(), totals: store.keyTotals(), denied: store.denyReasons() };
}

type Step =
  | { kind: 'call'; key: number; credits: number; refund: boolean }
  | { kind: 'deny'; key: number; reason: 'insufficient_credits' | 'rate_limited' }
  | { kind: 'topUp'; key: number; credits: number }
  | { kind: 'revoke'; key: number }
  | { kind: 'move'; key: number; namespace: string };

const NAMESPACES = ['default', 'acme', 'globex'];

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('call' as const), key: fc.nat({ max: 5 }), credits: fc.integer({ min: 1, max: 5 }), refund: fc.boolean() }),
  fc.record({ kind: fc.constant('deny' as const), key: fc.nat({ max: 5 }), reason: fc.constantFrom('insufficient_credits' as const, 'rate_limited' as const) }),
  fc.record({ kind: fc.constant('topUp' as const), key: fc.nat({ max: 5 }), credits: fc.integer({ min: 1, max: 50 }) }),
  fc.record({ kind: fc.constant('revoke' as const), key: fc.nat({ max: 5 }) }),
  fc.record({ kind: fc.constant('move' as const), key: fc.nat({ max: 5 }), namespace: fc.constantFrom(...NAMESPACES) }),
);

test('the kept totals of namespaces, keys and denials always equal what counting the rows gives', async () => {
  const dir = tempDir();
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
      const file = path.join(dir, `state-${run++}.db`);
      const ledger = openLedger(openStateFile(file));
      const records = Array.from({ length: 6 }, (_, i) => {
        const { id: _id, ...fields } = keyRecord({ credits: 100, namespace: NAMESPACES[i % 3]!, keyHash: `k${i}` });
        return ledger.insert(fields);
      });
      for (const s of steps) {
        const record = ledger.findById(records[s.key]!.id)!;
        if (s.kind === 'call') {
          const reservation = ledger.reserve(record, [{ tool: 'echo', credits: s.credits }], NOW);
          await reservation.durable;
          await ledger.settle(reservation, reservation.charges[0]!, s.refund ? 'failed' : null, NOW);
        } else if (s.kind === 'deny') {
          ledger.recordRefusal(record, 'echo', s.reason, 'denied', NOW);
        } else {
          ledger.update(record, (draft) => {
            if (s.kind === 'topUp') draft.credits += s.credits;
            else if (s.kind === 'revoke') draft.active = false;
            else draft.namespace = s.namespace;
          });
        }
      }
      ledger.flush();
      const totals = kept(ledger.store);
      const byNamespace = NAMESPACES.map((namespace) => ({
        denied: [...ledger.store.denyReasons(namespace)].sort(),
        keys: ledger.store.countKeys({ namespace }),
      }));
      ledger.close();
      const rows = counted(file);
      assert.deepEqual(totals.namespaces, rows.namespaces);
      assert.equal(totals.totals.totalCalls, rows.calls);
      assert.equal(totals.totals.keys, 6);
      NAMESPACES.forEach((namespace, i) => {
        const denied = rows.denied.filter((row) => row.namespace === namespace).map((row) => [row.reason, Number(row.n)]);
        assert.deepEqual(byNamespace[i]!.denied, denied.sort());
        assert.equal(byNamespace[i]!.keys, rows.namespaces.find((row) => row.namespace === namespace)?.keyCount ?? 0);
      });
    }),
    { numRuns: 25 },
  );
});

test('a state file from before the kept totals gets them built once from its rows', () => {
  const file = path.join(tempDir(), 'state.db');
  const ledger = openLedger(openStateFile(file));
  for (let i = 0; i < 5; i++) {
    const { id: _id, ...fields } = keyRecord({ credits: 10 * (i + 1), namespace: i % 2 ? 'acme' : 'default', keyHash: `old-${i}`, active: i !== 3 });
    const record = ledger.insert(fields);
    ledger.recordRefusal(record, 'echo', 'rate_limited', 'denied', NOW);
  }
  ledger.close();
  // Back to schema 1: no totals, the denial index it had, and rows written without triggers.
  const db = new DatabaseSync(file);
  db.exec(`DROP TABLE namespace_totals; DROP TABLE deny_totals;
    DROP TRIGGER namespace_totals_on_key_insert; DROP TRIGGER namespace_totals_on_key_delete;
    DROP TRIGGER namespace_totals_on_key_update; DROP TRIGGER namespace_totals_on_key_move; DROP TRIGGER deny_totals_on_event;
    CREATE INDEX events_denied ON events(namespace, reason) WHERE status = 'denied';
    UPDATE keys SET credits = credits + 1;
    PRAGMA user_version = 1;`);
  db.close();

  const reopened = openLedger(openStateFile(file));
  assert.deepEqual(reopened.store.namespaces(), [
    { namespace: 'acme', keyCount: 2, activeKeys: 1, totalCredits: 62, totalSpent: 0 },
    { namespace: 'default', keyCount: 3, activeKeys: 3, totalCredits: 93, totalSpent: 0 },
  ]);
  assert.deepEqual(Object.fromEntries(reopened.store.denyReasons()), { rate_limited: 5 });
  assert.deepEqual(Object.fromEntries(reopened.store.denyReasons('acme')), { rate_limited: 2 });
  reopened.close();
  const check = new DatabaseSync(file, { readOnly: true });
  assert.equal(check.prepare('PRAGMA user_version').get()!.user_version, 2);
  assert.equal(check.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'events_denied'`).get()!.n, 0);
  check.close();
});

test('retention deletes old events in small steps, oldest first, and leaves totals, balances and new ids as they were', async () => {
  const file = path.join(tempDir(), 'state.db');
  const ledger = openLedger(openStateFile(file));
  const { id: _id, ...fields } = keyRecord({ credits: 100_000, keyHash: 'k' });
  const record = ledger.insert(fields);
  // 2,500 events 40 days old, then 500 from today.
  for (let i = 0; i < 3000; i++) {
    const at = i < 2500 ? NOW - 40 * DAY_MS + i : NOW + i;
    if (i % 2 === 0) ledger.recordRefusal(record, 'echo', 'rate_limited', 'denied', at);
    else {
      const reservation = ledger.reserve(record, [{ tool: 'echo', credits: 1 }], at);
      await reservation.durable;
      await ledger.settle(reservation, reservation.charges[0]!, null, at);
    }
  }
  ledger.flush();
  const before = { ...kept(ledger.store), key: ledger.store.findKeyByHash('k') };
  const nextId = ledger.store.nextEventId();

  const retention = new UsageRetention(new SqliteLedger(ledger), (error) => assert.fail(error), () => NOW + 5000);
  retention.configure(30);
  retention.stop();
  const steps: number[] = [];
  for (let deleted = await retention.step(); deleted > 0; deleted = await retention.step()) steps.push(deleted);
  assert.deepEqual(steps, [1000, 1000, 500]);
  const left = ledger.store.usage({ limit: 5000 });
  assert.equal(left.length, 500);
  assert.ok(left.every((event) => event.at >= NOW));
  assert.deepEqual({ ...kept(ledger.store), key: ledger.store.findKeyByHash('k') }, before);

  retention.configure(0);
  assert.equal(await retention.step(), 0, 'retention 0 keeps everything');
  const forever = new UsageRetention(new SqliteLedger(ledger), (error) => assert.fail(error), () => NOW + 400 * DAY_MS);
  forever.configure(1);
  forever.stop();
  while ((await forever.step()) > 0);
  assert.equal(ledger.store.usage({ limit: 10 }).length, 0);
  ledger.close();

  const reopened = openLedger(openStateFile(file));
  assert.equal(reopened.store.nextEventId(), nextId, 'ids of deleted events are never given out again');
  reopened.close();
});

test('countKeys by tag still counts the rows, and agrees with the listing', () => {
  const ledger = new InProcessLedger(openStateFile(':memory:').store);
  for (let i = 0; i < 6; i++) {
    const { id: _id, ...fields } = keyRecord({ keyHash: `t${i}`, tags: { team: i % 2 ? 'red' : 'blue' } });
    ledger.insert(fields);
  }
  assert.equal(ledger.store.countKeys({ tags: { team: 'red' } }), 3);
  assert.equal(ledger.store.countKeys({}), 6);
  ledger.close();
});
