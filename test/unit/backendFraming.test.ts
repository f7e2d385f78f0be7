import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LineReader } from '../../server/src/proxy/lineReader.ts';

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
