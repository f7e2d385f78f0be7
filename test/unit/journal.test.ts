import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Journal, readJournal } from '../../server/src/store/journal.ts';
import { openLedger, openStateFile } from '../../server/src/store/open.ts';
import { mergeBatches } from '../../server/src/store/writer.ts';
import type { LedgerBatch } from '../../server/src/store/types.ts';
import { keyRecord, NOW } from '../helpers/records.ts';
import { tempDir } from '../helpers/tmp.ts';

const { id: _id, ...template } = keyRecord({ credits: 100 });

async function charge(ledger: ReturnType<typeof openLedger>, hash: string, credits: number): Promise<void> {
  const record = ledger.findByHash(hash)!;
  const reservation = ledger.reserve(record, [{ tool: 'echo', credits }], NOW);
  await reservation.durable;
  await ledger.settle(reservation, reservation.charges[0]!, null, NOW);
}

test('the journal is created 0600 and holds each turn as one line until it is applied', async () => {
  const file = path.join(tempDir(), 'state.db');
  const ledger = openLedger(openStateFile(file));
  ledger.insert({ ...template, keyHash: 'k' });
  await charge(ledger, 'k', 3);
  const journal = `${file}.journal`;
  assert.equal(fs.statSync(journal).mode & 0o777, 0o600);
  assert.equal(readJournal(journal).entries.length, 2);
  assert.equal(ledger.store.findKeyByHash('k')!.credits, 100, 'not applied yet');
  ledger.flush();
  assert.deepEqual(readJournal(journal), { databaseId: ledger.store.databaseId, entries: [] });
  assert.equal(ledger.store.findKeyByHash('k')!.credits, 97);
  ledger.close();
});

test('a call whose write fills the journal is answered before the journal is applied; the apply follows in the next turn', async () => {
  const file = path.join(tempDir(), 'state.db');
  const ledger = openLedger(openStateFile(file));
  ledger.insert({ ...template, keyHash: 'k' });
  const journal = `${file}.journal`;
  const lines = () => readJournal(journal).entries.length;
  // A lone call writes two lines (its reservation, its settlement); the 256th unapplied line starts an apply.
  while (lines() < 254) await charge(ledger, 'k', 1);
  const before = ledger.store.findKeyByHash('k')!.credits;
  await charge(ledger, 'k', 1);
  assert.equal(lines(), 256, 'the settlement is on disk when its caller hears of it');
  assert.equal(ledger.store.findKeyByHash('k')!.credits, before, 'and the journal is not applied yet');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(lines(), 0);
  assert.equal(ledger.store.findKeyByHash('k')!.credits, ledger.findByHash('k')!.credits);
  ledger.close();
});

test('a gate killed before applying its journal loses nothing: the next start replays it once', async () => {
  const file = path.join(tempDir(), 'state.db');
  const first = openLedger(openStateFile(file));
  first.insert({ ...template, keyHash: 'k' });
  for (let i = 0; i < 5; i++) await charge(first, 'k', 2);
  first.store.close();

  const second = openLedger(openStateFile(file));
  assert.equal(second.findByHash('k')!.credits, 90);
  assert.equal(second.store.usage({ limit: 100 }).length, 5);
  second.store.close();
  const third = openLedger(openStateFile(file));
  assert.equal(third.findByHash('k')!.credits, 90);
  assert.equal(third.store.usage({ limit: 100 }).length, 5);
  third.close();
});

test('a journal line cut short by a crash is not replayed, and the lines before it are', async () => {
  const file = path.join(tempDir(), 'state.db');
  const first = openLedger(openStateFile(file));
  first.insert({ ...template, keyHash: 'k' });
  await charge(first, 'k', 4);
  first.store.close();
  const journal = `${file}.journal`;
  const lines = fs.readFileSync(journal, 'utf8');
  fs.appendFileSync(journal, lines.trim().split('\n').at(-1)!.slice(0, 40));
  const second = openLedger(openStateFile(file));
  assert.equal(second.findByHash('k')!.credits, 96);
  second.close();
});

test('a journal keeps its header when emptied, and holds whole lines only', () => {
  const file = path.join(tempDir(), 'j');
  const journal = Journal.open(file, { syncEachLine: false });
  const batch: LedgerBatch = { balances: [], inserts: [] };
  journal.start('db-1');
  journal.append({ seq: 1, batch });
  journal.append({ seq: 2, batch });
  assert.deepEqual(readJournal(file), { databaseId: 'db-1', entries: [{ seq: 1, batch }, { seq: 2, batch }] });
  journal.clear();
  assert.deepEqual(readJournal(file), { databaseId: 'db-1', entries: [] });
  journal.append({ seq: 3, batch });
  assert.deepEqual(readJournal(file).entries.map((entry) => entry.seq), [3]);
  journal.close();
});

test('merged batches keep the newest balance of each key, every event and the newest tool totals', () => {
  const balance = (id: number, credits: number) => ({ id, credits, totalSpent: 0, totalCalls: 0, lastUsedAt: null, usage: template.usage, inflightCredits: 0, inflightCalls: 0 });
  const event = (id: number) => ({ id, at: NOW, keyId: 1, keyPrefix: 'p', keyName: 'n', namespace: 'default', tool: 'echo', credits: 1, status: 'charged' as const, reason: null });
  const merged = mergeBatches([
    { balances: [balance(1, 10), balance(2, 5)], inserts: [event(1)], toolStats: { stats: { echo: { calls: 1, credits: 1, denied: 0 } }, throughEventId: 1 } },
    { balances: [balance(1, 9)], inserts: [event(2)] },
    { balances: [], inserts: [event(3)], toolStats: { stats: { search: { calls: 2, credits: 4, denied: 0 } }, throughEventId: 3 } },
  ]);
  assert.deepEqual(merged.balances.map((b) => [b.id, b.credits]), [[1, 9], [2, 5]]);
  assert.deepEqual(merged.inserts.map((e) => e.id), [1, 2, 3]);
  assert.deepEqual(merged.toolStats, { stats: { echo: { calls: 1, credits: 1, denied: 0 }, search: { calls: 2, credits: 4, denied: 0 } }, throughEventId: 3 });
});
