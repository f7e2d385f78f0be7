import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BackendFailure } from '../../server/src/proxy/backend.ts';
import { IdRing } from '../../server/src/proxy/idRing.ts';
import { LineReader } from '../../server/src/proxy/lineReader.ts';
import type { JsonRpcId } from '../../server/src/proxy/jsonrpc.ts';
import { PendingRequests } from '../../server/src/proxy/pending.ts';

function read(chunks: Buffer[], maxLineBytes = 1024): { lines: string[]; oversized: number } {
  const reader = new LineReader(maxLineBytes);
  const lines: string[] = [];
  let oversized = 0;
  for (const chunk of chunks) reader.push(chunk, (line) => lines.push(line), () => oversized++);
  return { lines, oversized };
}

/** Cuts `bytes` at the given offsets. */
function cut(bytes: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((offset) => offset % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  return chunks;
}

test('lines come out whole and decoded however the bytes are cut, multibyte characters included', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'grapheme' }).filter((s) => !/[\r\n]/.test(s)), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (texts, offsets) => {
      const bytes = Buffer.from(texts.map((text) => `${text}\n`).join(''), 'utf8');
      assert.deepEqual(read(cut(bytes, offsets), 1 << 20).lines, texts);
    }),
  );
});

test('a CRLF line ending is taken off, and an unfinished last line waits for its newline', () => {
  const reader = new LineReader(1024);
  const lines: string[] = [];
  reader.push(Buffer.from('{"a":1}\r\n{"b"'), (line) => lines.push(line), () => {});
  assert.deepEqual(lines, ['{"a":1}']);
  reader.push(Buffer.from(':2}\n'), (line) => lines.push(line), () => {});
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}']);
});

test('a line over the limit is dropped once, in one chunk or many, and the next line is read', () => {
  const long = 'x'.repeat(40);
  assert.deepEqual(read([Buffer.from(`${long}\nok\n`)], 16), { lines: ['ok'], oversized: 1 });
  assert.deepEqual(read(cut(Buffer.from(`${long}\nok\n`), [5, 10, 20, 30, 41]), 16), { lines: ['ok'], oversized: 1 });
  assert.deepEqual(read([Buffer.from('x'.repeat(10)), Buffer.from(`${'y'.repeat(10)}\nok\n`)], 16), { lines: ['ok'], oversized: 1 });
});

test('a request without an answer fails at its own deadline, saying so, and one that is answered never does', async () => {
  const timedOut: JsonRpcId[] = [];
  const pending = new PendingRequests('docs', (id) => timedOut.push(id));
  const slow = pending.wait(1, 'tools/call', 200);
  const fast = pending.wait(2, 'resources/read', 30);
  const answered = pending.wait(3, 'tools/call', 30);
  assert.equal(pending.settle({ jsonrpc: '2.0', id: 3, result: {} }), true);
  assert.deepEqual(await answered, { jsonrpc: '2.0', id: 3, result: {} });
  const started = performance.now();
  await assert.rejects(fast, (error: unknown) => {
    assert.ok(error instanceof BackendFailure);
    assert.equal(error.kind, 'timeout');
    assert.equal(error.message, 'the MCP server "docs" did not answer resources/read within 30 ms');
    return true;
  });
  assert.deepEqual(timedOut, [2]);
  await assert.rejects(slow, /did not answer tools\/call within 200 ms/);
  assert.ok(performance.now() - started >= 150, 'the slow request kept its own, later deadline');
  assert.deepEqual(timedOut, [2, 1]);
  assert.equal(pending.settle({ jsonrpc: '2.0', id: 1, result: {} }), false, 'a late answer finds nothing waiting');
});

test('the id ring answers like a map, however long some requests stay in flight', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.constant('send' as const), fc.nat({ max: 400 })), { maxLength: 600 }), (steps) => {
      const ring = new IdRing<string>();
      const model = new Map<number, string>();
      let nextId = 0;
      for (const step of steps) {
        if (step === 'send') {
          ring.set(nextId, `call ${nextId}`);
          model.set(nextId, `call ${nextId}`);
          nextId++;
        } else {
          assert.equal(ring.take(step), model.get(step));
          model.delete(step);
        }
        assert.equal(ring.ids().length, model.size);
      }
      for (let id = 0; id < nextId; id++) assert.equal(ring.get(id), model.get(id));
      assert.deepEqual(ring.ids().sort((a, b) => a - b), [...model.keys()].sort((a, b) => a - b));
    }),
  );
});

test('the id ring answers like a map for any ids, colliding ones included, and stays sized by what it holds', () => {
  // Few distinct ids, most sharing home slots (multiples of 64 apart), so that probe runs form and break up.
  const colliding = fc.nat({ max: 47 }).map((n) => (n % 6) + 64 * Math.floor(n / 6));
  const anyId = fc.oneof({ arbitrary: colliding, weight: 8 }, { arbitrary: fc.nat({ max: 300 }), weight: 1 }, { arbitrary: fc.maxSafeNat(), weight: 1 });
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('set' as const, 'take' as const), anyId), { maxLength: 800 }), (steps) => {
      const ring = new IdRing<string>();
      const model = new Map<number, string>();
      steps.forEach(([action, id], step) => {
        if (action === 'set') {
          ring.set(id, `value ${step}`);
          model.set(id, `value ${step}`);
        } else {
          assert.equal(ring.take(id), model.get(id));
          model.delete(id);
        }
        assert.equal(ring.size, model.size);
        assert.ok(ring.capacity <= Math.max(64, model.size * 16), `capacity ${ring.capacity} for ${model.size} ids`);
      });
      for (const [id, value] of model) assert.equal(ring.get(id), value);
      assert.deepEqual(ring.ids().sort((a, b) => a - b), [...model.keys()].sort((a, b) => a - b));
    }),
  );
});

test('a request that never gets an answer keeps one slot: a million later ones do not grow the ring', () => {
  const ring = new IdRing<string>();
  ring.set(0, 'stuck');
  for (let id = 1; id <= 1_000_000; id++) {
    ring.set(id, 'call');
    assert.equal(ring.take(id), 'call');
  }
  assert.equal(ring.get(0), 'stuck');
  assert.equal(ring.size, 1);
  assert.equal(ring.capacity, 64);
});

test('the id ring gives memory back once a burst of requests is answered', () => {
  const ring = new IdRing<number>();
  for (let id = 0; id < 10_000; id++) ring.set(id, id);
  assert.ok(ring.capacity >= 20_000);
  for (let id = 0; id < 10_000; id++) assert.equal(ring.take(id), id);
  assert.equal(ring.capacity, 64);
});

test('ids the gate never sent find nothing in the ring', () => {
  const ring = new IdRing<string>();
  ring.set(5, 'five');
  for (const id of ['5', 5.5, -5, 69, null, undefined, Number.NaN]) assert.equal(ring.get(id), undefined, String(id));
  assert.throws(() => ring.set(-1, 'negative'), RangeError);
  assert.equal(ring.take(5), 'five');
  assert.equal(ring.take(5), undefined);
});
