import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SessionTable, type Session } from '../../server/src/http/sessions.ts';

const KEYED = { keyHash: 'hash-of-a-key', address: '10.0.0.1' };
const keyless = (address: string) => ({ keyHash: undefined, address });

function table(maxSessions: number, ended: Session[], keyless = { maxKeyless: 10, maxKeylessPerAddress: 10 }): SessionTable {
  return new SessionTable({ idleMs: 1000, maxSessions, ...keyless, onEnd: (session) => ended.push(session) });
}

test('a full table ends its least recently used session, however often the newest is touched', () => {
  const ended: Session[] = [];
  const sessions = table(3, ended);
  const a = sessions.create(0, KEYED);
  const b = sessions.create(1, KEYED);
  const c = sessions.create(2, KEYED);
  sessions.touch(a.id, 3);
  sessions.touch(a.id, 4);
  sessions.touch(c.id, 5);
  sessions.touch(c.id, 6);
  sessions.create(7, KEYED);
  assert.deepEqual(ended, [b]);
  sessions.create(8, KEYED);
  assert.deepEqual(ended, [b, a]);
});

test('sessions idle past the limit end, and the ones used since stay', () => {
  const ended: Session[] = [];
  const sessions = table(10, ended);
  const a = sessions.create(0, KEYED);
  const b = sessions.create(0, keyless('10.0.0.2'));
  const c = sessions.create(0, KEYED);
  sessions.touch(a.id, 900);
  sessions.touch(c.id, 950);
  sessions.end(c.id);
  sessions.touch(a.id, 1500);
  sessions.sweep(1600);
  assert.deepEqual(ended, [c, b]);
  assert.equal(sessions.size, 1);
  assert.equal(sessions.touch(a.id, 1700), a);
});

test('a session remembers the key it was opened with and the address it came from', () => {
  const sessions = table(10, []);
  const keyed = sessions.create(0, KEYED);
  const anonymous = sessions.create(0, keyless('10.0.0.9'));
  assert.deepEqual([keyed.keyHash, keyed.address], ['hash-of-a-key', '10.0.0.1']);
  assert.deepEqual([anonymous.keyHash, anonymous.address], [undefined, '10.0.0.9']);
});

test('keyless sessions end only keyless sessions: the oldest of their address, then the least recently used of all', () => {
  const ended: Session[] = [];
  const sessions = table(2, ended, { maxKeyless: 4, maxKeylessPerAddress: 2 });
  const keyed = sessions.create(0, KEYED);
  const first = sessions.create(1, keyless('10.0.0.2'));
  const second = sessions.create(2, keyless('10.0.0.2'));
  const other = sessions.create(3, keyless('10.0.0.3'));
  sessions.create(4, keyless('10.0.0.2'));
  assert.deepEqual(ended, [first], 'the third session of 10.0.0.2 ends its oldest');
  sessions.touch(second.id, 5);
  sessions.create(6, keyless('10.0.0.4'));
  sessions.create(7, keyless('10.0.0.5'));
  assert.deepEqual(ended, [first, other], 'a full keyless room ends its least recently used session');
  for (let i = 0; i < 50; i++) sessions.create(8 + i, keyless(`10.1.0.${i}`));
  assert.equal(sessions.touch(keyed.id, 100), keyed, 'no number of keyless sessions ends a keyed one');
  assert.equal(sessions.size, 5);
});
