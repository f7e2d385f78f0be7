import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import fs from 'node:fs';
import { Journal, type JournalIo } from '../../server/src/store/journal.ts';
import { InProcessLedger } from '../../server/src/store/ledger.ts';
import { openLedger, openStateFile } from '../../server/src/store/open.ts';
import { JournaledWriter } from '../../server/src/store/writer.ts';
import type { LedgerBatch } from '../../server/src/store/types.ts';
import { keyRecord, NOW } from '../helpers/records.ts';
import { tempDir } from '../helpers/tmp.ts';

const { id: _id, ...template } = keyRecord({ credits: 10 });

function memoryLedger(): { ledger: InProcessLedger; commits: LedgerBatch[] } {
  const store = openStateFile(':memory:').store;
  const commits: LedgerBatch[] = [];
  const commit = store.commit.bind(store);
  store.commit = (batch) => {
    commits.push(batch);
    commit(batch);
  };
  return { ledger: new InProcessLedger(store), commits };
}

test('a lone reservation is on disk at once; those made while others are in flight share one write at the end of the turn', async () => {
  const { ledger, commits } = memoryLedger();
  const record = ledger.insert({ ...template, keyHash: 'k' });
  const lone = ledger.reserve(record, [{ tool: 'echo', credits: 1 }], NOW);
  assert.equal(commits.length, 1);
  const more = Array.from({ length: 4 }, () => ledger.reserve(record, [{ tool: 'echo', credits: 1 }], NOW));
  assert.equal(record.credits, 5);
  assert.equal(commits.length, 1);
  const reservations = [lone, ...more];
  await Promise.all(reservations.map((r) => r.durable));
  assert.equal(commits.length, 2);
  assert.deepEqual(commits[1]!.balances.map((b) => [b.credits, b.inflightCredits, b.inflightCalls]), [[5, 5, 5]]);
  assert.equal(ledger.store.findKeyByHash('k')!.credits, 5);
  const settled = reservations.map((r) => ledger.settle(r, r.charges[0]!, null, NOW));
  assert.equal(commits.length, 3, 'the last call out writes every settlement of the turn at once');
  await Promise.all(settled);
  assert.equal(commits[2]!.inserts.length, 5);
  assert.deepEqual(ledger.store.keysWithCallsInFlight(), []);
});

test('a refunded charge gives the credits back and undoes the totals', async () => {
  const { ledger } = memoryLedger();
  const record = ledger.insert({ ...template, keyHash: 'k' });
  const reservation = ledger.reserve(record, [{ tool: 'echo', credits: 3 }], NOW);
  await reservation.durable;
  await ledger.settle(reservation, reservation.charges[0]!, 'failed', NOW);
  const stored = ledger.store.findKeyByHash('k')!;
  assert.equal(stored.credits, 10);
  assert.equal(stored.totalSpent, 0);
  assert.equal(stored.usage.dailyCredits, 0);
  assert.deepEqual(ledger.store.usage({ limit: 10 }).map((e) => [e.status, e.credits, e.reason]), [['refunded', 0, 'failed']]);
});

test('calls admitted but never settled before a crash are refunded exactly once at the next start', async () => {
  const file = path.join(tempDir(), 'state.db');
  const first = openLedger(openStateFile(file));
  const record = first.insert({ ...template, keyHash: 'k' });
  const settled = first.reserve(record, [{ tool: 'echo', credits: 2 }], NOW);
  await settled.durable;
  await first.settle(settled, settled.charges[0]!, null, NOW);
  await first.reserve(record, [{ tool: 'echo', credits: 3 }], NOW).durable;
  first.store.close();

  const second = openLedger(openStateFile(file));
  assert.equal(second.recoverInterrupted(NOW), 1);
  assert.equal(second.findByHash('k')!.credits, 8);
  second.close();
  const third = openLedger(openStateFile(file));
  assert.equal(third.recoverInterrupted(NOW), 0);
  assert.equal(third.findByHash('k')!.credits, 8);
  assert.deepEqual(third.store.usage({ limit: 10 }).map((e) => e.status), ['charged', 'interrupted']);
  third.close();
});

test('admin changes are written at once and a rotated key is found only by its new hash', () => {
  const { ledger } = memoryLedger();
  const record = ledger.insert({ ...template, keyHash: 'old' });
  ledger.update(record, (draft) => {
    draft.keyHash = 'new';
    draft.credits += 5;
  });
  assert.equal(ledger.findByHash('old'), undefined);
  assert.equal(ledger.findByHash('new'), record);
  assert.equal(ledger.store.findKeyByHash('new')!.credits, 15);
});

/** Resolves once `ledger` takes charges again; the ledger retries a failed write every second. */
async function recovery(ledger: InProcessLedger): Promise<void> {
  for (const started = Date.now(); ledger.failure; ) {
    assert.ok(Date.now() - started < 5000, 'the ledger did not recover');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('a reservation that cannot be written is given back and its call refused; the ledger takes charges again once writes succeed', async () => {
  const { ledger } = memoryLedger();
  const record = ledger.insert({ ...template, keyHash: 'k' });
  const before = structuredClone(record);
  const commit = ledger.store.commit.bind(ledger.store);
  let diskFull = true;
  ledger.store.commit = (batch) => {
    if (diskFull) throw new Error('disk full');
    commit(batch);
  };
  await assert.rejects(ledger.reserve(record, [{ tool: 'echo', credits: 3 }], NOW).durable, /disk full/);
  assert.deepEqual({ ...record, lastUsedAt: null }, before, 'the debit is rolled back: that call was never made');
  assert.match(ledger.failure!.message, /disk full/);
  assert.throws(() => ledger.reserve(record, [{ tool: 'echo', credits: 1 }], NOW), /cannot be written: disk full/);

  diskFull = false;
  await recovery(ledger);
  const reservation = ledger.reserve(record, [{ tool: 'echo', credits: 1 }], NOW);
  await reservation.durable;
  await ledger.settle(reservation, reservation.charges[0]!, null, NOW);
  assert.equal(ledger.store.findKeyByHash('k')!.credits, 9);
  assert.deepEqual(ledger.store.keysWithCallsInFlight(), []);
});

/** File calls whose writes fail with ENOSPC while `full` is set. */
function diskThatFills(): JournalIo & { full: boolean } {
  const io = {
    full: false,
    write(fd: number, bytes: Buffer, offset: number): number {
      if (io.full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      return fs.writeSync(fd, bytes, offset);
    },
    truncate: (fd: number, length: number) => fs.ftruncateSync(fd, length),
    sync: (fd: number) => fs.fdatasyncSync(fd),
  };
  return io;
}

test('a settlement that cannot be written still settles: the kept charge is refunded (its answer is withheld) and written once the disk has room', async () => {
  const file = path.join(tempDir(), 'state.db');
  const state = openStateFile(file);
  state.journal!.close();
  const disk = diskThatFills();
  const ledger = new InProcessLedger(state.store, new JournaledWriter(state.store, Journal.open(`${file}.journal`, { syncEachLine: false, io: disk }), []));
  const record = ledger.insert({ ...template, keyHash: 'k' });
  const a = ledger.reserve(record, [{ tool: 'echo', credits: 2 }], NOW);
  const b = ledger.reserve(record, [{ tool: 'search', credits: 3 }], NOW);
  await Promise.all([a.durable, b.durable]);

  disk.full = true;
  await assert.rejects(ledger.settle(a, a.charges[0]!, null, NOW), /ENOSPC/);
  assert.equal(record.credits, 7, "a's 2 credits are back; b's 3 are still in flight");
  assert.equal(ledger.toolStats().get('echo')?.calls ?? 0, 0);
  disk.full = false;
  await recovery(ledger);
  await ledger.settle(b, b.charges[0]!, null, NOW);
  ledger.store.close();

  const restarted = openLedger(openStateFile(file));
  assert.equal(restarted.recoverInterrupted(NOW), 0, 'nothing was left in flight: the settlement was written');
  assert.equal(restarted.findByHash('k')!.credits, 7);
  assert.deepEqual(
    restarted.store.usage({ limit: 10 }).map((event) => [event.tool, event.status, event.credits]),
    [['echo', 'refunded', 0], ['search', 'charged', 3]],
  );
  restarted.close();
});

test('a settlement that cannot be written before the gate dies is refunded once at the next start', async () => {
  const file = path.join(tempDir(), 'state.db');
  const state = openStateFile(file);
  state.journal!.close();
  const disk = diskThatFills();
  const journal = Journal.open(`${file}.journal`, { syncEachLine: false, io: disk });
  const ledger = new InProcessLedger(state.store, new JournaledWriter(state.store, journal, []));
  const record = ledger.insert({ ...template, keyHash: 'k' });
  const a = ledger.reserve(record, [{ tool: 'echo', credits: 2 }], NOW);
  await a.durable;
  disk.full = true;
  await assert.rejects(ledger.settle(a, a.charges[0]!, null, NOW), /ENOSPC/);
  // The gate dies: its files close without anything more written.
  journal.close();
  ledger.store.close();

  const restarted = openLedger(openStateFile(file));
  assert.equal(restarted.recoverInterrupted(NOW), 1);
  assert.equal(restarted.findByHash('k')!.credits, 10);
  assert.deepEqual(restarted.store.usage({ limit: 10 }).map((event) => event.status), ['interrupted']);
  restarted.close();
});

test('per-tool totals survive a crash: the store counts the events written after the last saved totals', async () => {
  const file = path.join(tempDir(), 'state.db');
  const first = openLedger(openStateFile(file));
  const record = first.insert({ ...template, keyHash: 'k', credits: 100 });
  for (const tool of ['echo', 'echo', 'search']) {
    const reservation = first.reserve(record, [{ tool, credits: 2 }], NOW);
    await reservation.durable;
    await first.settle(reservation, reservation.charges[0]!, null, NOW);
  }
  first.recordRefusal(record, 'search', 'insufficient_credits', 'denied', NOW);
  first.flush();
  first.store.close();
  const second = openLedger(openStateFile(file));
  assert.deepEqual(Object.fromEntries(second.toolStats()), {
    echo: { calls: 2, credits: 4, denied: 0 },
    search: { calls: 1, credits: 2, denied: 1 },
  });
  second.close();
  const third = openLedger(openStateFile(file));
  assert.deepEqual(third.toolStats().get('echo'), { calls: 2, credits: 4, denied: 0 });
  third.close();
});

test('event times never go back, so usage since a time is found even when the clock jumps backwards', () => {
  const { ledger } = memoryLedger();
  const record = ledger.insert({ ...template, keyHash: 'k' });
  const times = [1000, 2000, 1500, 3000, 2500, 4000];
  for (const at of times) ledger.recordRefusal(record, 'echo', 'rate_limited', 'denied', at);
  ledger.flush();
  const stored = ledger.store.usage({ limit: 10 }).map((event) => event.at);
  assert.deepEqual(stored, [1000, 2000, 2000, 3000, 3000, 4000]);
  for (const since of [0, 1000, 1001, 2000, 2001, 3500, 4000, 4001]) {
    assert.deepEqual(
      ledger.store.usage({ limit: 10, sinceMs: since }).map((event) => event.at),
      stored.filter((at) => at >= since),
      `since ${since}`,
    );
  }
});
