import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BackendFailure } from '../../server/src/proxy/backend.ts';
import { LineReader } from '../../server/src/proxy/lineReader.ts';
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

test('a request without an answer fails at its own deadline, and one that is answered never does', async () => {
  const pending = new PendingRequests();
  const timedOut: string[] = [];
  const slow = pending.wait(1, 200, 'slow timed out', () => timedOut.push('slow'));
  const fast = pending.wait(2, 30, 'fast timed out', () => timedOut.push('fast'));
  const answered = pending.wait(3, 30, 'answered timed out', () => timedOut.push('answered'));
  assert.equal(pending.settle({ jsonrpc: '2.0', id: 3, result: {} }), true);
  assert.deepEqual(await answered, { jsonrpc: '2.0', id: 3, result: {} });
  const started = performance.now();
  await assert.rejects(fast, (error: unknown) => error instanceof BackendFailure && error.kind === 'timeout' && error.message === 'fast timed out');
  assert.deepEqual(timedOut, ['fast']);
  await assert.rejects(slow, /slow timed out/);
  assert.ok(performance.now() - started >= 150, 'the slow request kept its own, later deadline');
  assert.deepEqual(timedOut, ['fast', 'slow']);
  assert.equal(pending.settle({ jsonrpc: '2.0', id: 1, result: {} }), false, 'a late answer finds nothing waiting');
});
