import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { Journal, readJournal, type JournalIo } from '../../server/src/store/journal.ts';
import { openLedger, openStateFile, StateFileError } from '../../server/src/store/open.ts';
import { mergeBatches } from '../../server/src/store/writer.ts';
import type { LedgerBatch } from '../../server/src/store/types.ts';
import { keyRecord, NOW } from '../helpers/records.ts';
import { tempDir } from '../helpers/tmp.ts';

const { id: _id, ...template } = keyRecord({ credits: 100 });

/** Files as they are on disk, to show that a refused start changed nothing. */
function snapshot(...files: string[]): Record<string, Buffer | undefined> {
  return Object.fromEntries(files.map((file) => [file, fs.existsSync(file) ? fs.readFileSync(file) : undefined]));
}

/** A state whose gate was killed with `calls` charges of 1 credit still in its journal only. */
async function killedWithJournal(file: string, calls: number): Promise<void> {
  const ledger = openLedger(openStateFile(file));
  ledger.insert({ ...template, keyHash: 'k' });
  for (let i = 0; i < calls; i++) await charge(ledger, 'k', 1);
  ledger.store.close();
}

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

test('a damaged line followed by intact ones stops the start, naming the journal and the byte offset, and changes nothing', async () => {
  const file = path.join(tempDir(), 'state.db');
  const journal = `${file}.journal`;
  await killedWithJournal(file, 3);
  const text = fs.readFileSync(journal, 'utf8');
  const lines = text.split('\n');
  // Line 0 is the header; damage the second entry of six (three calls: reservation and settlement each).
  const offset = Buffer.byteLength(lines.slice(0, 2).join('\n')) + 1;
  lines[2] = `{"seq":${'#'.repeat(20)}`;
  fs.writeFileSync(journal, lines.join('\n'));
  const before = snapshot(file, journal);

  assert.throws(
    () => openStateFile(file),
    (error: Error) => error instanceof StateFileError && error.message.includes(journal) && error.message.includes(`at byte ${offset}`),
  );
  assert.deepEqual(snapshot(file, journal), before);

  // The remedy the message gives, in the same process: nothing of the failed start holds the files.
  fs.truncateSync(journal, offset);
  const ledger = openLedger(openStateFile(file));
  assert.equal(ledger.findByHash('k')!.credits, 99, 'the first call, whose lines come before the damage, is kept');
  ledger.close();
});

test('damaged lines at the end of the journal (a write cut short) are ignored, even a last line that parses but has no newline', async () => {
  const file = path.join(tempDir(), 'state.db');
  const journal = `${file}.journal`;
  await killedWithJournal(file, 2);
  const lastLine = fs.readFileSync(journal, 'utf8').trim().split('\n').at(-1)!;
  fs.appendFileSync(journal, `{"seq":99,"bat\n\u0000\u0000\n${lastLine.replace(/"seq":\d+/, '"seq":100')}`);
  const ledger = openLedger(openStateFile(file));
  assert.equal(ledger.findByHash('k')!.credits, 98);
  assert.equal(ledger.store.usage({ limit: 10 }).length, 2);
  ledger.close();
});

test('a journal from another database is refused, naming both files, and changes nothing; its own database opens it', async () => {
  const dir = tempDir();
  const ours = path.join(dir, 'ours.db');
  const theirs = path.join(dir, 'theirs.db');
  await killedWithJournal(theirs, 2);
  openStateFile(ours).store.close();
  fs.copyFileSync(`${theirs}.journal`, `${ours}.journal`);
  const before = snapshot(ours, `${ours}.journal`);
  assert.throws(
    () => openStateFile(ours),
    (error: Error) => error instanceof StateFileError && /belongs to another database/.test(error.message) && error.message.includes(`${ours}.journal`) && error.message.includes(ours),
  );
  assert.deepEqual(snapshot(ours, `${ours}.journal`), before);
  const ledger = openLedger(openStateFile(theirs));
  assert.equal(ledger.findByHash('k')!.credits, 98);
  ledger.close();
});

test('a state file restored from a backup older than its journal is refused: the lines in between are missing', async () => {
  const file = path.join(tempDir(), 'state.db');
  const ledger = openLedger(openStateFile(file));
  ledger.insert({ ...template, keyHash: 'k' });
  await charge(ledger, 'k', 1);
  ledger.close();
  const backup = fs.readFileSync(file);
  const again = openLedger(openStateFile(file));
  for (let i = 0; i < 3; i++) await charge(again, 'k', 1);
  again.flush();
  await charge(again, 'k', 1);
  again.store.close();
  fs.writeFileSync(file, backup);
  fs.rmSync(`${file}-wal`, { force: true });
  assert.throws(() => openStateFile(file), /older than its ledger journal.*restored from a backup/);
});

/** File calls that fail as a full disk does: the next write stores `partial` bytes and then fails, once. */
function fullDiskOnce(partial: number): JournalIo & { syncs: number; fail: boolean } {
  const io = {
    syncs: 0,
    fail: false,
    write(fd: number, bytes: Buffer, offset: number): number {
      if (!io.fail) return fs.writeSync(fd, bytes, offset);
      io.fail = false;
      fs.writeSync(fd, bytes, offset, partial);
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    },
    truncate: (fd: number, length: number) => fs.ftruncateSync(fd, length),
    sync(fd: number) {
      io.syncs++;
      fs.fdatasyncSync(fd);
    },
  };
  return io;
}

test('a failed append (a full disk) is cut back to the last good byte, and later lines never join it', () => {
  const file = path.join(tempDir(), 'j');
  const io = fullDiskOnce(17);
  const journal = Journal.open(file, { syncEachLine: false, io });
  const batch: LedgerBatch = { balances: [], inserts: [] };
  journal.start('db-1');
  journal.append({ seq: 1, batch });
  const good = fs.readFileSync(file);
  io.fail = true;
  assert.throws(() => journal.append({ seq: 2, batch }), /ENOSPC/);
  assert.deepEqual(fs.readFileSync(file), good);
  journal.append({ seq: 2, batch });
  journal.append({ seq: 3, batch });
  assert.deepEqual(readJournal(file).entries.map((entry) => entry.seq), [1, 2, 3]);
  journal.close();
});

test('a failed append whose cut-back also fails is cut back before the next line is written', () => {
  const file = path.join(tempDir(), 'j');
  const io = fullDiskOnce(9);
  let truncateFails = false;
  const journal = Journal.open(file, {
    syncEachLine: false,
    io: { ...io, write: io.write, truncate: (fd, length) => (truncateFails ? assert.fail('EIO') : fs.ftruncateSync(fd, length)) },
  });
  const batch: LedgerBatch = { balances: [], inserts: [] };
  journal.start('db-1');
  io.fail = true;
  truncateFails = true;
  assert.throws(() => journal.append({ seq: 1, batch }), /ENOSPC/);
  assert.throws(() => journal.append({ seq: 1, batch }), /EIO/, 'nothing is appended after a partial line');
  truncateFails = false;
  journal.append({ seq: 1, batch });
  assert.deepEqual(readJournal(file), { databaseId: 'db-1', entries: [{ seq: 1, batch }] });
  journal.close();
});

test('with power durability every line is synced to the disk before append returns', () => {
  const file = path.join(tempDir(), 'j');
  const io = fullDiskOnce(0);
  const journal = Journal.open(file, { syncEachLine: true, io });
  journal.start('db-1');
  for (let seq = 1; seq <= 3; seq++) journal.append({ seq, batch: { balances: [], inserts: [] } });
  assert.equal(io.syncs, 4);
  journal.close();
});

test('a gate killed between applying its journal and emptying it applies no line twice at the next start', () => {
  const file = path.join(tempDir(), 'state.db');
  const fixture = path.join(import.meta.dirname, '..', 'fixtures', 'killAfterApply.ts');
  const child = spawnSync(process.execPath, [fixture, file, '5'], { encoding: 'utf8' });
  assert.equal(child.signal, 'SIGKILL', child.stderr);
  assert.equal(readJournal(`${file}.journal`).entries.length, 10, 'the kill came after the apply, before the journal was emptied');

  const ledger = openLedger(openStateFile(file));
  assert.equal(ledger.findByHash('k')!.credits, 95);
  assert.deepEqual(ledger.store.usage({ limit: 100 }).map((event) => [event.status, event.credits]), Array(5).fill(['charged', 1]));
  assert.equal(ledger.recoverInterrupted(NOW), 0);
  ledger.close();
});
