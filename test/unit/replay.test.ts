import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { SessionTable, type Session } from '../../server/src/http/sessions.ts';
import { SseStream } from '../../server/src/http/sse.ts';

const LIMITS = { maxEvents: 50, maxBytes: 5_000, maxTotalBytes: 20_000 };
const KEYED = { keyHash: 'hash-of-a-key', address: '10.0.0.1' };

/** A response that takes whatever is written and can be closed like a dropped connection. */
class Sink extends EventEmitter {
  written = '';
  destroyed = false;
  writeHead(): this {
    return this;
  }
  flushHeaders(): void {}
  write(text: string): boolean {
    this.written += text;
    return true;
  }
  end(): void {
    this.drop();
  }
  drop(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

const request = (headers: Record<string, string> = {}) => ({ headers }) as unknown as IncomingMessage;
const asResponse = (sink: Sink) => sink as unknown as ServerResponse;

function table(): SessionTable {
  return new SessionTable({ idleMs: 60_000, maxSessions: 100, maxKeyless: 10, maxKeylessPerAddress: 10, onEnd: () => {}, replay: LIMITS });
}

const note = (text: string) => ({ jsonrpc: '2.0' as const, method: 'notifications/message', params: { level: 'info', data: text } });

/** A session whose GET stream was opened and then dropped: everything sent to it waits in its window. */
function droppedGetStream(session: Session): void {
  const sink = new Sink();
  session.streams.open(request(), asResponse(sink));
  sink.drop();
}

/** Runs many POST answers to their end, each with a progress message, on connections that drop. */
function answers(session: Session, count: number): void {
  for (let call = 0; call < count; call++) {
    const sink = new Sink();
    const stream = session.streams.openAnswer(new SseStream(asResponse(sink), {}, false), request());
    stream.send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: call, progress: 1 } });
    sink.drop();
    stream.finish({ jsonrpc: '2.0', id: call, result: { content: [{ type: 'text', text: 'x'.repeat(40) }] } });
  }
}

test('replay windows stay within their limits per session and in all, however much is sent', () => {
  const sessions = table();
  const all = Array.from({ length: 20 }, (_, i) => sessions.create(i, KEYED));
  for (const session of all) {
    droppedGetStream(session);
    answers(session, 300);
    // Small messages last: the count limit binds before the byte limit.
    for (let i = 0; i < 1_000; i++) session.deliver(note(String(i)));
  }
  for (const session of all) {
    const { events, bytes, streams } = session.streams.window;
    assert.ok(events <= LIMITS.maxEvents, `${events} events`);
    assert.ok(bytes <= LIMITS.maxBytes, `${bytes} bytes`);
    assert.ok(streams <= LIMITS.maxEvents + 1, `${streams} streams remembered`);
  }
  const total = all.reduce((sum, session) => sum + session.streams.window.bytes, 0);
  assert.ok(total <= LIMITS.maxTotalBytes, `${total} bytes in all`);
  assert.ok(total > LIMITS.maxTotalBytes - LIMITS.maxBytes, 'the budget is used');
  assert.equal(all[0]!.streams.window.events, 0, 'the session written to least recently gave up its window first');
  assert.ok(all.at(-1)!.streams.window.events > 0);

  for (const session of all.slice(-5)) sessions.end(session.id);
  for (const session of all.slice(-5)) assert.deepEqual(session.streams.window, { events: 0, bytes: 0, streams: 0 });
});

test('a resumed GET stream receives only what its connection missed, then goes on live', () => {
  const session = table().create(0, KEYED);
  const first = new Sink();
  session.streams.open(request({ 'mcp-protocol-version': '2025-11-25' }), asResponse(first));
  session.deliver(note('one'));
  const lastId = /id: (\S+)\nevent: message\ndata: [^\n]*"one"/.exec(first.written)![1]!;
  first.drop();
  session.deliver(note('two'));
  session.deliver(note('three'));

  const second = new Sink();
  session.streams.open(request({ 'last-event-id': lastId }), asResponse(second));
  assert.equal(session.deliver(note('four')), true);
  const received = [...second.written.matchAll(/"data":"(\w+)"/g)].map((match) => match[1]);
  assert.deepEqual(received, ['two', 'three', 'four']);
});
