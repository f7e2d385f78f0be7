import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { InProcessLedger } from '../../server/src/store/ledger.ts';
import { markLegacyImported, openLedger, openStateFile, StateFileError } from '../../server/src/store/open.ts';
import { APPLICATION_ID } from '../../server/src/store/sqlite.ts';
import { keyRecord, NOW } from '../helpers/records.ts';
import { tempDir } from '../helpers/tmp.ts';

const { id: _id, ...newKey } = keyRecord({ keyHash: 'abc', name: 'persisted', credits: 42, tags: { team: 'red' } });

test('a new state file is created with mode 0600 and keeps keys across reopening', () => {
  const file = path.join(tempDir(), 'nested', 'state.db');
  const first = openStateFile(file).store;
  const stored = first.insertKey(newKey);
  first.close();
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const again = openStateFile(file).store;
  assert.deepEqual(again.findKeyByHash('abc'), stored);
  assert.deepEqual(again.findKeyById(stored.id), stored);
  again.close();
});

test('a state file in use by another gate is refused, naming the file', () => {
  const file = path.join(tempDir(), 'state.db');
  const owner = openStateFile(file).store;
  assert.throws(() => openStateFile(file), (error: Error) => error instanceof StateFileError && error.message.includes(file) && /in use/.test(error.message));
  owner.close();
});

test('a file that is not a state database is refused and left byte for byte as it was', () => {
  const file = path.join(tempDir(), 'state.db');
  const garbage = Buffer.from('this is not sqlite \u0000\u0001\u0002 at all'.repeat(50));
  fs.writeFileSync(file, garbage);
  assert.throws(() => openStateFile(file), (error: Error) => error instanceof StateFileError && error.message.includes(file));
  assert.deepEqual(fs.readFileSync(file), garbage);
});

test('a database whose pages are damaged is refused and left as it was', () => {
  const file = path.join(tempDir(), 'state.db');
  const store = openStateFile(file).store;
  for (let i = 0; i < 200; i++) store.insertKey({ ...newKey, keyHash: `k${i}`, name: 'x'.repeat(100) });
  store.close();
  const bytes = fs.readFileSync(file);
  bytes.fill(0xff, 100, 4096 * 3);
  fs.writeFileSync(file, bytes);
  assert.throws(() => openStateFile(file), (error: Error) => error instanceof StateFileError && error.message.includes(file));
  assert.deepEqual(fs.readFileSync(file), bytes);
});

test('an unreadable state file is refused with the reason', { skip: process.getuid?.() === 0 && 'root can read anything' }, () => {
  const file = path.join(tempDir(), 'state.db');
  fs.writeFileSync(file, 'x', { mode: 0o000 });
  assert.throws(() => openStateFile(file), /cannot read the state file/);
});

test('a paygate-mcp 2.x JSON state file is never written: its keys go to <file>.sqlite once', () => {
  const file = path.join(tempDir(), 'state.json');
  const legacy = JSON.stringify([['pg_legacy_key_1', { key: 'pg_legacy_key_1', credits: 5 }]]);
  fs.writeFileSync(file, legacy);
  const state = openStateFile(file);
  assert.equal(state.legacyJsonFile, file);
  assert.equal(state.store.location, `${file}.sqlite`);
  markLegacyImported(state);
  state.store.close();
  const reopened = openStateFile(file);
  assert.equal(reopened.legacyJsonFile, undefined);
  reopened.store.close();
  assert.equal(fs.readFileSync(file, 'utf8'), legacy);
});

test('usage queries page by cursor and filter by key, namespace and time', async () => {
  const ledger = new InProcessLedger(openStateFile(':memory:').store);
  const a = ledger.insert({ ...newKey, keyHash: 'a', namespace: 'red' });
  const b = ledger.insert({ ...newKey, keyHash: 'b', namespace: 'blue' });
  const call = async (record: typeof a, at: number) => {
    const reservation = ledger.reserve(record, [{ tool: 'echo', credits: 1 }], at);
    await reservation.durable;
    await ledger.settle(reservation, reservation.charges[0]!, null, at);
  };
  for (let i = 0; i < 5; i++) await call(a, NOW + i);
  await call(b, NOW + 10);
  const store = ledger.store;
  const page = store.usage({ limit: 4 });
  assert.equal(page.length, 4);
  assert.equal(store.usage({ limit: 10, afterId: page.at(-1)!.id }).length, 2);
  assert.equal(store.usage({ limit: 10, keyId: b.id }).length, 1);
  assert.equal(store.usage({ limit: 10, namespace: 'red' }).length, 5);
  assert.equal(store.usage({ limit: 10, sinceMs: NOW + 3 }).length, 3);
  assert.deepEqual(store.namespaces().map((n) => [n.namespace, n.keyCount]), [['blue', 1], ['red', 1]]);
  ledger.close();
});

test('every event of a large batch is stored exactly as given, in order', () => {
  const { store } = openStateFile(path.join(tempDir(), 'state.db'));
  const inserts = Array.from({ length: 150 }, (_, i) => ({
    id: i + 1,
    at: NOW + i,
    keyId: i % 3 === 0 ? null : 7,
    keyPrefix: `pg_${i}`,
    keyName: `key ${i} ☃`,
    namespace: i % 2 ? 'red' : 'default',
    tool: `tool-${i % 5}`,
    credits: i,
    status: i % 4 === 0 ? ('refunded' as const) : ('charged' as const),
    reason: i % 4 === 0 ? `refund ${i}` : null,
  }));
  store.commit({ balances: [], inserts });
  assert.deepEqual(store.usage({ limit: 1000 }), inserts);
  store.close();
});

function sql(file: string, statements: string): void {
  const db = new DatabaseSync(file);
  db.exec(statements);
  db.close();
}

function pragma(file: string, name: string): unknown {
  const db = new DatabaseSync(file, { readOnly: true });
  const value = (db.prepare(`PRAGMA ${name}`).get() as Record<string, unknown>)[name];
  db.close();
  return value;
}

test("another program's SQLite database is refused before anything is written to it", () => {
  const dir = tempDir();
  const file = path.join(dir, 'notes.db');
  sql(file, 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES (\'mine\');');
  const bytes = fs.readFileSync(file);
  assert.throws(
    () => openStateFile(file),
    (error: Error) => error instanceof StateFileError && error.message.includes(file) && /another program's SQLite database.*notes/.test(error.message),
  );
  assert.deepEqual(fs.readFileSync(file), bytes);
  assert.deepEqual(fs.readdirSync(dir), ['notes.db'], 'no journal or other file beside it');
});

test('a database that carries another application id is refused even with tables named like ours', () => {
  const file = path.join(tempDir(), 'state.db');
  sql(file, 'PRAGMA application_id = 7; CREATE TABLE keys (id INTEGER); CREATE TABLE events (id INTEGER); CREATE TABLE meta (name TEXT, value TEXT);');
  assert.throws(() => openStateFile(file), /application id 7/);
});

test('new state databases carry PayGate\'s application id; one from before it is adopted, its keys kept', () => {
  const file = path.join(tempDir(), 'state.db');
  const first = openStateFile(file).store;
  first.insertKey(newKey);
  const id = first.databaseId;
  first.close();
  assert.equal(pragma(file, 'application_id'), APPLICATION_ID);
  sql(file, "PRAGMA application_id = 0; DELETE FROM meta WHERE name = 'database-id';");
  const adopted = openStateFile(file).store;
  assert.equal(adopted.findKeyByHash('abc')!.credits, 42);
  assert.notEqual(adopted.databaseId, id);
  adopted.close();
  assert.equal(pragma(file, 'application_id'), APPLICATION_ID);
});

test('a state file that fails to open releases it: fixed, it opens again in the same process', () => {
  const file = path.join(tempDir(), 'state.db');
  openStateFile(file).store.close();
  sql(file, 'PRAGMA user_version = 99;');
  assert.throws(() => openStateFile(file), /newer paygate-mcp/);
  sql(file, 'PRAGMA user_version = 1;');
  const ledger = openLedger(openStateFile(file));
  ledger.insert(newKey);
  ledger.close();
});
