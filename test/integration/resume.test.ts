import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { GateProcess } from '../helpers/gate.ts';

const VERSION = '2025-11-25';

interface SseEvent {
  id: string | undefined;
  data: string;
}

/** An event stream read as it arrives, which the test can cut like a dropped connection. */
class EventReader {
  readonly status: number;
  readonly #abort: AbortController;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #buffer = '';
  #ended = false;

  private constructor(status: number, abort: AbortController, reader: ReadableStreamDefaultReader<Uint8Array> | undefined) {
    this.status = status;
    this.#abort = abort;
    this.#reader = reader;
  }

  static async open(url: string, init: RequestInit): Promise<EventReader> {
    const abort = new AbortController();
    const response = await fetch(url, { ...init, signal: abort.signal });
    const isStream = response.headers.get('content-type')?.includes('text/event-stream');
    return new EventReader(response.status, abort, isStream ? response.body!.getReader() : undefined);
  }

  /** The next event, or undefined once the stream has ended. */
  async next(timeoutMs = 5_000): Promise<SseEvent | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.#buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        const lines = block.split('\n');
        if (lines.every((line) => line.startsWith(':'))) continue;
        const field = (name: string) => lines.find((line) => line.startsWith(`${name}:`))?.slice(name.length + 1).trimStart();
        return { id: field('id'), data: field('data') ?? '' };
      }
      if (this.#ended) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event within ${timeoutMs} ms; received so far: ${JSON.stringify(this.#buffer)}`);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), left)));
      const { value, done } = await Promise.race([this.#reader!.read(), timeout]).finally(() => clearTimeout(timer));
      if (done) this.#ended = true;
      else this.#buffer += new TextDecoder().decode(value);
    }
  }

  /** The next event's JSON-RPC message; fails on a priming event or the end of the stream. */
  async message(): Promise<any> {
    const event = await this.next();
    assert.ok(event?.data, `expected a message, got ${JSON.stringify(event)}`);
    return { ...JSON.parse(event.data), eventId: event.id };
  }

  cut(): void {
    this.#abort.abort();
  }
}

const gate = await GateProcess.start(['--rate-limit', '0']);

/** Opens a session with a fresh key. */
async function openSession(): Promise<{ key: string; headers: Record<string, string> }> {
  const { key } = await gate.createKey({ credits: 100 });
  const init = await gate.mcp(
    { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'resume-test', version: '1' } } },
    { key },
  );
  const session = init.headers.get('mcp-session-id');
  assert.ok(session);
  const headers = { 'x-api-key': key, 'mcp-session-id': session, 'mcp-protocol-version': VERSION };
  assert.equal((await gate.mcp({ jsonrpc: '2.0', method: 'notifications/initialized' }, { headers })).status, 202);
  return { key, headers };
}

function get(headers: Record<string, string>, lastEventId?: string): Promise<EventReader> {
  const extra: Record<string, string> = lastEventId === undefined ? {} : { 'last-event-id': lastEventId };
  return EventReader.open(`${gate.base}/mcp`, { method: 'GET', headers: { ...headers, ...extra, accept: 'text/event-stream' } });
}

function post(headers: Record<string, string>, message: unknown, accept = 'application/json, text/event-stream'): Promise<EventReader> {
  return EventReader.open(`${gate.base}/mcp`, {
    method: 'POST',
    headers: { ...headers, accept, 'content-type': 'application/json' },
    body: JSON.stringify(message),
  });
}

/** A call whose answer is JSON: the server's log message for it goes to the session's GET stream. */
async function logOnGetStream(headers: Record<string, string>): Promise<void> {
  const reply = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'log', arguments: {} } }, { headers: { ...headers, accept: 'application/json' } });
  assert.equal(reply.json.result.content[0].text, 'logged');
}

function progressCall(id: number, ms: number): unknown {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'progress', arguments: { ms }, _meta: { progressToken: 'mine' } } };
}

test('a GET stream cut and resumed with Last-Event-ID receives exactly the events it missed, then live ones', async () => {
  const { headers } = await openSession();
  const stream = await get(headers);
  assert.equal(stream.status, 200);
  const priming = await stream.next();
  assert.ok(priming?.id, 'a 2025-11-25 stream starts with an event id');
  assert.equal(priming.data, '');

  await logOnGetStream(headers);
  const seen = await stream.message();
  assert.equal(seen.method, 'notifications/message');
  stream.cut();

  await logOnGetStream(headers);
  await logOnGetStream(headers);
  const resumed = await get(headers, seen.eventId);
  assert.equal(resumed.status, 200);
  const missed = [await resumed.message(), await resumed.message()];
  assert.deepEqual(
    missed.map((message) => message.method),
    ['notifications/message', 'notifications/message'],
  );
  await logOnGetStream(headers);
  const live = await resumed.message();
  assert.equal(live.method, 'notifications/message');

  const ids = [seen, ...missed, live].map((message) => message.eventId as string);
  assert.equal(new Set(ids).size, 4, `every event has its own id: ${ids}`);
  assert.ok(ids.every((id) => id.split('-')[0] === ids[0]!.split('-')[0]), `one stream: ${ids}`);
  await assert.rejects(resumed.next(300), /no event within/, 'nothing is sent twice');
  resumed.cut();
});

test('a POST answer cut mid-stream is resumed with GET: the rest arrives, the result included, and the call is charged once', async () => {
  const { key, headers } = await openSession();
  const before = await gate.balance(key);
  const answer = await post(headers, progressCall(5, 400));
  assert.ok((await answer.next())?.id, 'priming event');
  const first = await answer.message();
  assert.deepEqual([first.method, first.params.progress], ['notifications/progress', 1]);
  answer.cut();
  // Resumed between the second step (missed, so replayed) and the third (live).
  await new Promise((resolve) => setTimeout(resolve, 600));

  const resumed = await get(headers, first.eventId);
  assert.equal(resumed.status, 200);
  const rest = [await resumed.message(), await resumed.message(), await resumed.message()];
  assert.deepEqual(
    rest.map((message) => message.params?.progress ?? message.result?.content[0].text),
    [2, 3, 'progress done'],
  );
  assert.equal(rest[2].id, 5);
  assert.equal(await resumed.next(), undefined, 'the stream ends with its response');
  assert.equal(before - (await gate.balance(key)), 1);
});

test('the response of a call whose connection dropped before it was answered waits for the client to resume', async () => {
  const { key, headers } = await openSession();
  const before = await gate.balance(key);
  const answer = await post(headers, progressCall(6, 30));
  await answer.next();
  const first = await answer.message();
  answer.cut();
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(before - (await gate.balance(key)), 1, 'the call has ended');

  const resumed = await get(headers, first.eventId);
  const rest = [await resumed.message(), await resumed.message(), await resumed.message()];
  assert.deepEqual(rest.at(-1).result.content[0].text, 'progress done');
  assert.equal(await resumed.next(), undefined);
  assert.equal(before - (await gate.balance(key)), 1);
});

test('the replay window is bounded: ids pushed out of it get 410, recent ones still resume', async () => {
  const { headers } = await openSession();
  const big = 'x'.repeat(300_000);
  const primingIds: string[] = [];
  for (let call = 0; call < 15; call++) {
    // An answer taken only as an event stream: its response is kept in the window.
    const answer = await post(headers, { jsonrpc: '2.0', id: call, method: 'tools/call', params: { name: 'echo', arguments: { text: big } } }, 'text/event-stream');
    primingIds.push((await answer.next())!.id!);
    assert.equal((await answer.message()).result.content[0].text.length, big.length);
  }
  const gone = await gate.request('GET', '/mcp', { headers: { ...headers, accept: 'text/event-stream', 'last-event-id': primingIds[0]! } });
  assert.equal(gone.status, 410);
  assert.match(gone.json.error.message, /not kept .*its last 1000 events and 4 MiB/);

  const recent = await get(headers, primingIds.at(-1));
  assert.equal(recent.status, 200);
  assert.equal((await recent.message()).id, 14);
  assert.equal(await recent.next(), undefined);
});

test('a Last-Event-ID that this gate did not send is refused with 400, and one of another session replays nothing of it', async () => {
  const { headers } = await openSession();
  const malformed = await gate.request('GET', '/mcp', { headers: { ...headers, accept: 'text/event-stream', 'last-event-id': 'abc' } });
  assert.equal(malformed.status, 400);
  assert.match(malformed.json.error.message, /Last-Event-ID "abc" is not an event id/);

  const other = await openSession();
  const answer = await post(other.headers, progressCall(7, 10));
  await answer.next();
  const foreignId = (await answer.message()).eventId;
  while (await answer.next());
  const foreign = await gate.request('GET', '/mcp', { headers: { ...headers, accept: 'text/event-stream', 'last-event-id': foreignId } });
  assert.equal(foreign.status, 410);
  assert.doesNotMatch(foreign.text, /progress/);
});

test('answers without a session carry no event ids: there is nothing to resume', async () => {
  const { key } = await gate.createKey();
  const answer = await post({ 'x-api-key': key, 'mcp-protocol-version': VERSION }, progressCall(8, 10));
  const events: SseEvent[] = [];
  for (let event = await answer.next(); event; event = await answer.next()) events.push(event);
  assert.equal(events.length, 4);
  assert.ok(events.every((event) => event.id === undefined && event.data !== ''));
});

test('the official TypeScript SDK client resumes a dropped tool call through the gate and gets its result', async () => {
  const { key } = await gate.createKey({ credits: 10 });
  const resumedWith: string[] = [];
  let cut = false;
  // Passes the first tools/call answer through until its first progress event, then fails it like a dropped connection.
  const cuttingFetch = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const lastEventId = new Headers(init?.headers).get('last-event-id');
    if (lastEventId) resumedWith.push(lastEventId);
    const response = await fetch(url, init);
    const isCall = typeof init?.body === 'string' && init.body.includes('"tools/call"');
    if (cut || !isCall || !response.headers.get('content-type')?.includes('text/event-stream')) return response;
    cut = true;
    const reader = response.body!.getReader();
    let seen = '';
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (seen.includes('notifications/progress')) {
          await reader.cancel();
          controller.error(new TypeError('the connection dropped'));
          return;
        }
        const { value, done } = await reader.read();
        if (done) return controller.close();
        seen += new TextDecoder().decode(value);
        controller.enqueue(value);
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  const transport = new StreamableHTTPClientTransport(new URL(`${gate.base}/mcp`), {
    requestInit: { headers: { 'x-api-key': key } },
    fetch: cuttingFetch,
    // It reconnects between the second step (missed, so replayed) and the third (live).
    reconnectionOptions: { initialReconnectionDelay: 450, maxReconnectionDelay: 450, reconnectionDelayGrowFactor: 1, maxRetries: 3 },
  });
  const client = new Client({ name: 'resume-test', version: '1' });
  await client.connect(transport);
  try {
    const progress: number[] = [];
    const result = await client.callTool({ name: 'progress', arguments: { ms: 300 } }, undefined, { onprogress: (step) => progress.push(step.progress) });
    assert.deepEqual(result.content, [{ type: 'text', text: 'progress done' }]);
    assert.deepEqual(progress, [1, 2, 3]);
    assert.equal(cut, true);
    assert.equal(resumedWith.length, 1, `resumed once: ${resumedWith}`);
    assert.equal(await gate.balance(key), 9);
  } finally {
    await client.close();
  }
});
