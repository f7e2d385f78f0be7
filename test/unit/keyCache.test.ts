import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { InProcessLedger, type LocalReservation } from '../../server/src/store/ledger.ts';
import { openStateFile } from '../../server/src/store/open.ts';
import { JournaledWriter } from '../../server/src/store/writer.ts';
import { keyRecord, NOW } from '../helpers/records.ts';
import { tempDir } from '../helpers/tmp.ts';

const CACHE = 8;
const KEYS = 200;

function journaledLedger(file: string): InProcessLedger {
  const state = openStateFile(file);
  return new InProcessLedger(state.store, new JournaledWriter(state.store, state.journal!, state.recovered), CACHE);
}

/** A small deterministic random sequence, so that a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

test('the key cache stays bounded over many keys, and balances stay exact when dropped keys are used again mid-load', async () => {
  const file = path.join(tempDir(), 'state.db');
  const ledger = journaledLedger(file);
  const hashes: string[] = [];
  for (let i = 0; i < KEYS; i++) {
    const { id: _id, ...fields } = keyRecord({ credits: 1000, keyHash: `key-${i}` });
    ledger.insert(fields);
    hashes.push(fields.keyHash);
  }
  const expected = new Map(hashes.map((hash) => [hash, { credits: 1000, spent: 0, calls: 0 }]));
  let reads = 0;
  const read = ledger.store.findKeyByHash.bind(ledger.store);
  ledger.store.findKeyByHash = (hash) => {
    reads++;
    return read(hash);
  };
  const next = random(12);
  const pick = () => hashes[Math.floor(next() * hashes.length)]!;
  let largest = 0;

  for (let round = 0; round < 300; round++) {
    const calls: { hash: string; reservation: LocalReservation }[] = [];
    for (let i = 0; i < 4; i++) {
      const hash = pick();
      calls.push({ hash, reservation: ledger.reserve(ledger.findByHash(hash)!, [{ tool: 'echo', credits: 1 + (round % 3) }], NOW) });
    }
    // Everything is applied while the calls are in flight, and other keys push on the cache...
    ledger.flush();
    for (let i = 0; i < 20; i++) ledger.findByHash(pick());
    ledger.flush();
    largest = Math.max(largest, ledger.cachedKeys);
    // ...and a key with a call in flight is charged again: it must be the same live record.
    const again = calls[0]!;
    calls.push({ hash: again.hash, reservation: ledger.reserve(ledger.findByHash(again.hash)!, [{ tool: 'echo', credits: 1 }], NOW) });
    await Promise.all(calls.map(({ reservation }) => reservation.durable));
    await Promise.all(
      calls.map(({ hash, reservation }, i) => {
        const charge = reservation.charges[0]!;
        const refunded = (round + i) % 4 === 0;
        if (!refunded) {
          const model = expected.get(hash)!;
          model.credits -= charge.credits;
          model.spent += charge.credits;
          model.calls += 1;
        }
        return ledger.settle(reservation, charge, refunded ? 'failed' : null, NOW);
      }),
    );
    if (round % 10 === 0) {
      const hash = pick();
      ledger.update(ledger.findByHash(hash)!, (draft) => {
        draft.credits += 7;
      });
      expected.get(hash)!.credits += 7;
    }
    if (round % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 210));
  }

  assert.ok(largest <= CACHE + 5, `the cache held ${largest} keys (room for ${CACHE}, plus 5 with calls in flight)`);
  assert.ok(reads > KEYS * 2, `dropped keys were read again from the store (${reads} reads)`);
  for (const hash of hashes) {
    const live = ledger.findByHash(hash)!;
    const model = expected.get(hash)!;
    assert.deepEqual([live.credits, live.totalSpent, live.totalCalls], [model.credits, model.spent, model.calls], hash);
  }
  ledger.close();

  const reopened = journaledLedger(file);
  for (const hash of hashes) {
    const stored = reopened.store.findKeyByHash(hash)!;
    const model = expected.get(hash)!;
    assert.deepEqual([stored.credits, stored.totalSpent, stored.totalCalls], [model.credits, model.spent, model.calls], hash);
  }
  assert.equal(reopened.store.keyTotals().totalCredits, [...expected.values()].reduce((sum, model) => sum + model.credits, 0));
  reopened.close();
});

test('a flood of lookups alone cannot grow the key cache past twice its size', () => {
  const ledger = new InProcessLedger(openStateFile(':memory:').store, undefined, CACHE);
  for (let i = 0; i < 100; i++) {
    const { id: _id, ...fields } = keyRecord({ keyHash: `lookup-${i}` });
    ledger.insert(fields);
  }
  for (let i = 0; i < 100; i++) {
    assert.equal(ledger.findByHash(`lookup-${i}`)!.keyHash, `lookup-${i}`);
    assert.ok(ledger.cachedKeys <= 2 * CACHE, `${ledger.cachedKeys} keys cached`);
  }
  ledger.close();
});
