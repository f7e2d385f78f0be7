import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SessionTable, type Session } from '../../server/src/http/sessions.ts';

function table(maxSessions: number, ended: Session[]): SessionTable {
  return new SessionTable({ idleMs: 1000, maxSessions, onEnd: (session) => ended.push(session) });
}

test('a full table ends its least recently used session, however often the newest is touched', () => {
  const ended: Session[] = [];
  const sessions = table(3, ended);
  const a = sessions.create(0);
  const b = sessions.create(1);
  const c = sessions.create(2);
  sessions.touch(a.id, 3);
  sessions.touch(a.id, 4);
  sessions.touch(c.id, 5);
  sessions.touch(c.id, 6);
  sessions.create(7);
  assert.deepEqual(ended, [b]);
  sessions.create(8);
  assert.deepEqual(ended, [b, a]);
});

test('sessions idle past the limit end, and the ones used since stay', () => {
  const ended: Session[] = [];
  const sessions = table(10, ended);
  const a = sessions.create(0);
  const b = sessions.create(0);
  const c = sessions.create(0);
  sessions.touch(a.id, 900);
  sessions.touch(c.id, 950);
  sessions.end(c.id);
  sessions.touch(a.id, 1500);
  sessions.sweep(1600);
  assert.deepEqual(ended, [c, b]);
  assert.equal(sessions.size, 1);
  assert.equal(sessions.touch(a.id, 1700), a);
});
