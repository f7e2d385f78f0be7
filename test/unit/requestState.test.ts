import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { argumentsDigest, RequestStateSeal, type RetryBinding } from '../../server/src/engine/requestState.ts';

const TTL_MS = 10 * 60_000;

function seal(options: { now?: () => number; maxPending?: number; key?: Buffer } = {}): RequestStateSeal {
  return new RequestStateSeal({ ttlMs: TTL_MS, maxPending: options.maxPending ?? 100, now: options.now ?? (() => 1_000_000), ...(options.key ? { key: options.key } : {}) });
}

const BINDING: RetryBinding = { keyHash: 'hash-of-key-a', method: 'tools/call', name: 'greet', argsDigest: argumentsDigest({ text: 'hi', n: 1 }) };
const FIRST = { serverState: 'server-state-1', credits: 5 };

function problemOf(result: ReturnType<RequestStateSeal['open']>): string | undefined {
  return 'problem' in result ? result.problem : undefined;
}

describe('the seal on a Multi Round-Trip requestState', () => {
  test('an envelope opens for its retry and gives back the server\'s state and the first attempt\'s price', () => {
    const states = seal();
    const envelope = states.seal(BINDING, FIRST);
    assert.match(envelope, /^pgrs1\./);
    assert.ok(!envelope.includes('server-state-1'), 'the server state is encrypted, not merely signed');
    const opened = states.open(envelope, BINDING);
    assert.ok('opened' in opened, JSON.stringify(opened));
    assert.deepEqual([opened.opened.serverState, opened.opened.credits], ['server-state-1', 5]);
  });

  test('a server that sent no requestState gets none back on the retry', () => {
    const states = seal();
    const opened = states.open(states.seal(BINDING, { serverState: undefined, credits: 1 }), BINDING);
    assert.ok('opened' in opened);
    assert.equal(opened.opened.serverState, undefined);
  });

  test('an envelope is used once: a replay is refused', () => {
    const states = seal();
    const envelope = states.seal(BINDING, FIRST);
    assert.ok('opened' in states.open(envelope, BINDING));
    assert.equal(problemOf(states.open(envelope, BINDING)), 'request_state_used');
    assert.equal(states.pending, 0);
  });

  test('an envelope given back after a refused retry opens once more', () => {
    const states = seal();
    const envelope = states.seal(BINDING, FIRST);
    const opened = states.open(envelope, BINDING);
    assert.ok('opened' in opened);
    states.restore(opened.opened);
    assert.ok('opened' in states.open(envelope, BINDING));
    assert.equal(problemOf(states.open(envelope, BINDING)), 'request_state_used');
  });

  test('an altered envelope is refused, whichever byte is changed', () => {
    const states = seal();
    const envelope = states.seal(BINDING, FIRST);
    const body = Buffer.from(envelope.slice('pgrs1.'.length), 'base64url');
    for (let index = 0; index < body.length; index += 7) {
      const altered = Buffer.from(body);
      altered[index]! ^= 0x01;
      assert.equal(problemOf(states.open(`pgrs1.${altered.toString('base64url')}`, BINDING)), 'request_state_invalid', `byte ${index}`);
    }
    // Nothing altered is ever taken for the real one: it still opens.
    assert.ok('opened' in states.open(envelope, BINDING));
  });

  test('a state the gate did not make is refused: the server\'s own, garbage, not a string', () => {
    const states = seal();
    for (const token of ['server-state-1', 'pgrs1.', 'pgrs1.AAAA', '', 42, null, { state: 1 }]) {
      assert.equal(problemOf(states.open(token, BINDING)), 'request_state_invalid', JSON.stringify(token));
    }
  });

  test('an envelope sealed by another gate (or this one before a restart) is refused', () => {
    const envelope = seal({ key: Buffer.alloc(32, 1) }).seal(BINDING, FIRST);
    assert.equal(problemOf(seal({ key: Buffer.alloc(32, 2) }).open(envelope, BINDING)), 'request_state_invalid');
  });

  test('another API key may not present it, and that does not use it up', () => {
    const states = seal();
    const envelope = states.seal(BINDING, FIRST);
    assert.equal(problemOf(states.open(envelope, { ...BINDING, keyHash: 'hash-of-key-b' })), 'request_state_foreign');
    assert.equal(problemOf(states.open(envelope, { ...BINDING, keyHash: undefined })), 'request_state_foreign');
    assert.ok('opened' in states.open(envelope, BINDING));
  });

  test('a retry of another tool, method or arguments is refused', () => {
    const states = seal();
    const envelope = states.seal(BINDING, FIRST);
    assert.equal(problemOf(states.open(envelope, { ...BINDING, name: 'echo' })), 'request_state_mismatch');
    assert.equal(problemOf(states.open(envelope, { ...BINDING, method: 'prompts/get' })), 'request_state_mismatch');
    assert.equal(problemOf(states.open(envelope, { ...BINDING, argsDigest: argumentsDigest({ text: 'hi', n: 2 }) })), 'request_state_mismatch');
    assert.ok('opened' in states.open(envelope, BINDING));
  });

  test('the same arguments in another key order are the same arguments', () => {
    assert.equal(argumentsDigest({ a: 1, b: { c: [1, { d: 2, e: 3 }] } }), argumentsDigest({ b: { c: [1, { e: 3, d: 2 }] }, a: 1 }));
    assert.notEqual(argumentsDigest({ a: [1, 2] }), argumentsDigest({ a: [2, 1] }));
    assert.equal(argumentsDigest(undefined), argumentsDigest({}));
  });

  test('an envelope expires: presented after its time it is refused', () => {
    let now = 1_000_000;
    const states = seal({ now: () => now });
    const envelope = states.seal(BINDING, FIRST);
    now += TTL_MS - 1;
    const early = states.seal(BINDING, FIRST);
    assert.ok('opened' in states.open(early, BINDING));
    now += 1;
    assert.equal(problemOf(states.open(envelope, BINDING)), 'request_state_expired');
  });

  test('pending envelopes are bounded: past the bound the oldest is forgotten and refused, never opened twice', () => {
    const states = seal({ maxPending: 2 });
    const oldest = states.seal(BINDING, FIRST);
    const middle = states.seal(BINDING, FIRST);
    const newest = states.seal(BINDING, FIRST);
    assert.equal(states.pending, 2);
    assert.equal(problemOf(states.open(oldest, BINDING)), 'request_state_used');
    assert.ok('opened' in states.open(middle, BINDING));
    assert.ok('opened' in states.open(newest, BINDING));
  });

  test('lapsed envelopes leave the pending table when new ones are sealed', () => {
    let now = 1_000_000;
    const states = seal({ now: () => now });
    states.seal(BINDING, FIRST);
    states.seal(BINDING, FIRST);
    now += TTL_MS;
    states.seal(BINDING, FIRST);
    assert.equal(states.pending, 1);
  });
});
