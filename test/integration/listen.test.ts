import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { GateProcess, ROOT, waitFor } from '../helpers/gate.ts';
import { collectEvents, type Message } from '../helpers/sse.ts';

const MODERN = '2026-07-28';
const MODERN_BACKEND = path.join(ROOT, 'test', 'fixtures', 'modernBackend.ts');
const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';


interface Listening {
  status: number;
  headers: Headers;
  /** The JSON answer of a refused listen. */
  refusal: any;
  messages: Message[];
  close(): void;
}

/** Sends `subscriptions/listen` as a 2026-07-28 client does, and reads the stream it opens as it arrives. */
async function listen(gate: GateProcess, notifications: unknown, options: { key?: string; id?: number | string; headers?: Record<string, string> } = {}): Promise<Listening> {
  const controller = new AbortController();
  const meta = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} };
  const response = await fetch(`${gate.base}/mcp`, {
    method: 'POST',
    headers: {
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'mcp-protocol-version': MODERN,
      'mcp-method': 'subscriptions/listen',
      ...(options.key ? { 'x-api-key': options.key } : {}),
      ...options.headers,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: options.id ?? 1, method: 'subscriptions/listen', params: { _meta: meta, notifications } }),
    signal: controller.signal,
  });
  const messages: Message[] = [];
  const listening: Listening = { status: response.status, headers: response.headers, refusal: undefined, messages, close: () => controller.abort() };
  after(() => listening.close());
  if (!response.headers.get('content-type')?.includes('text/event-stream')) {
    listening.refusal = JSON.parse(await response.text());
    return listening;
  }
  void collectEvents(response.body!, messages);
  return listening;
}

/** Listens and waits for the acknowledgment, which must be the stream's first message. */
async function acknowledged(gate: GateProcess, notifications: unknown, options: { key?: string; id?: number | string } = {}): Promise<Listening & { ack: Message }> {
  const listening = await listen(gate, notifications, options);
  assert.equal(listening.status, 200, JSON.stringify(listening.refusal));
  const ack = await waitFor('the acknowledgment', async () => listening.messages[0]);
  assert.equal(ack.method, 'notifications/subscriptions/acknowledged');
  assert.equal(ack.params._meta[SUBSCRIPTION_ID], options.id ?? 1);
  return Object.assign(listening, { ack });
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 300));
const named = (listening: Listening, method: string) => listening.messages.filter((message) => message.method === method);
const updatedUris = (listening: Listening) => named(listening, 'notifications/resources/updated').map((message) => message.params.uri);

describe('subscriptions/listen in front of a 2025 server', async () => {
  const gate = await GateProcess.start(['--rate-limit', '0']);
  const { key: admin } = await gate.createKey({ credits: 1000 });
  const subscriptionLog = async (): Promise<string[]> => (await gate.callTool(admin, 'subscriptions')).json.result.structuredContent.log;

  test('a listener without a key is acknowledged first, then gets tools/list_changed tagged with its subscription id', async () => {
    const listener = await acknowledged(gate, { toolsListChanged: true, promptsListChanged: true }, { id: 7 });
    assert.match(listener.headers.get('content-type')!, /text\/event-stream/);
    // The server offers tool list changes only: the acknowledgment says what the gate honours.
    assert.deepEqual(listener.ack.params.notifications, { toolsListChanged: true });
    await gate.callTool(admin, 'announce');
    const changed = await waitFor('tools/list_changed', async () => named(listener, 'notifications/tools/list_changed')[0]);
    assert.equal(changed.params._meta[SUBSCRIPTION_ID], 7);
    listener.close();
  });

  test('resources/updated reaches only the listener subscribed to that URI, and listening charges nothing', async () => {
    const alice = await gate.createKey({ credits: 5 });
    const bob = await gate.createKey({ credits: 5 });
    const first = await acknowledged(gate, { resourceSubscriptions: ['test://a'] }, { key: alice.key, id: 'a' });
    const second = await acknowledged(gate, { resourceSubscriptions: ['test://b'] }, { key: bob.key, id: 'b' });
    assert.deepEqual(first.ack.params.notifications, { resourceSubscriptions: ['test://a'] });
    await gate.callTool(admin, 'announce', { uri: 'test://a' });
    const update = await waitFor('the update of test://a', async () => named(first, 'notifications/resources/updated')[0]);
    assert.deepEqual([update.params.uri, update.params._meta[SUBSCRIPTION_ID]], ['test://a', 'a']);
    await settle();
    assert.deepEqual(updatedUris(first), ['test://a']);
    assert.deepEqual(updatedUris(second), []);
    // Neither asked for list changes.
    assert.deepEqual(named(first, 'notifications/tools/list_changed'), []);
    assert.deepEqual([await gate.balance(alice.key), await gate.balance(bob.key)], [5, 5]);
    first.close();
    second.close();
  });

  test('two listeners of one URI share one upstream subscription, which ends when the last of them closes', async () => {
    const uri = 'test://shared';
    const count = (log: string[], entry: string) => log.filter((line) => line === entry).length;
    const first = await acknowledged(gate, { resourceSubscriptions: [uri] }, { key: (await gate.createKey()).key });
    const second = await acknowledged(gate, { resourceSubscriptions: [uri] }, { key: (await gate.createKey()).key });
    assert.equal(count(await subscriptionLog(), `+${uri}`), 1);
    first.close();
    await settle();
    assert.equal(count(await subscriptionLog(), `-${uri}`), 0);
    await gate.callTool(admin, 'announce', { uri });
    await waitFor('the update on the listener still open', async () => (updatedUris(second).includes(uri) ? true : undefined));
    second.close();
    await waitFor('the upstream unsubscribe', async () => (count(await subscriptionLog(), `-${uri}`) === 1 ? true : undefined));
    assert.equal(count(await subscriptionLog(), `+${uri}`), 1);
  });

  test('a key may hold 10 streams; a closed stream leaves the table and makes room again', async () => {
    const { key } = await gate.createKey();
    const open = [];
    for (let i = 0; i < 10; i++) open.push(await acknowledged(gate, { toolsListChanged: true }, { key }));
    const refused = await listen(gate, { toolsListChanged: true }, { key });
    assert.equal(refused.status, 429);
    assert.match(refused.refusal.error.message, /this API key has 10 subscriptions\/listen streams open.*close one/);
    open[3]!.close();
    const reopened = await waitFor('room for a new stream', async () => {
      const attempt = await listen(gate, { toolsListChanged: true }, { key });
      if (attempt.status === 200) return attempt;
      attempt.close();
      return undefined;
    });
    assert.equal(await waitFor('its acknowledgment', async () => reopened.messages[0]?.method), 'notifications/subscriptions/acknowledged');
    for (const listener of [...open, reopened]) listener.close();
  });

  test('resource updates need a valid key: without one or with an unknown one, the listen gets 401 and nothing is subscribed', async () => {
    for (const key of [undefined, 'pg_not_a_real_key_0123456789']) {
      const refused = await listen(gate, { toolsListChanged: true, resourceSubscriptions: ['test://nokey'] }, key === undefined ? {} : { key });
      assert.equal(refused.status, 401);
      assert.ok(refused.headers.get('www-authenticate'));
      assert.match(refused.refusal.error.message, /^resource updates need a valid API key/);
    }
    assert.ok(!(await subscriptionLog()).includes('+test://nokey'));
  });

  test('a malformed filter is refused with -32602, and a 2025 client is told the method is 2026-07-28\'s', async () => {
    const malformed = await listen(gate, { resourceSubscriptions: 'test://a' });
    assert.equal(malformed.refusal.error.code, -32602);
    assert.match(malformed.refusal.error.message, /resourceSubscriptions must be an array/);
    const legacy = await gate.mcp({ jsonrpc: '2.0', id: 3, method: 'subscriptions/listen', params: { notifications: { toolsListChanged: true } } });
    assert.equal(legacy.json.error.code, -32601);
  });
});

describe('subscriptions/listen in front of a 2026-07-28 server', async () => {
  const gate = await GateProcess.start(['--rate-limit', '0'], { backend: { server: `"${process.execPath}" "${MODERN_BACKEND}"` } });
  const { key } = await gate.createKey({ credits: 1000 });
  const serverListens = async (): Promise<{ toolsListChanged: boolean; resourceSubscriptions: string[] }[]> =>
    (await gate.callTool(key, 'listens')).json.result.structuredContent.listens;

  test('tools/list_changed from the server\'s own stream reaches the listener with the listener\'s subscription id', async () => {
    const listener = await acknowledged(gate, { toolsListChanged: true }, { id: 21 });
    assert.deepEqual(listener.ack.params.notifications, { toolsListChanged: true });
    await gate.callTool(key, 'announce');
    const changed = await waitFor('tools/list_changed', async () => named(listener, 'notifications/tools/list_changed')[0]);
    assert.equal(changed.params._meta[SUBSCRIPTION_ID], 21);
    listener.close();
  });

  test('resource updates go to the listeners of that URI over one upstream stream per URI, cancelled when the last listener goes', async () => {
    const uri = 'test://modern';
    const first = await acknowledged(gate, { resourceSubscriptions: [uri] }, { key });
    const second = await acknowledged(gate, { resourceSubscriptions: [uri] }, { key: (await gate.createKey()).key });
    const other = await acknowledged(gate, { resourceSubscriptions: ['test://other'] }, { key });
    assert.equal((await serverListens()).filter((filter) => filter.resourceSubscriptions.includes(uri)).length, 1);
    await gate.callTool(key, 'announce', { uri });
    await waitFor('both updates', async () => (updatedUris(first).includes(uri) && updatedUris(second).includes(uri) ? true : undefined));
    await settle();
    assert.deepEqual(updatedUris(other), []);
    first.close();
    second.close();
    await waitFor('the upstream stream cancelled', async () => ((await serverListens()).some((filter) => filter.resourceSubscriptions.includes(uri)) ? undefined : true));
    assert.ok((await serverListens()).some((filter) => filter.resourceSubscriptions.includes('test://other')));
    other.close();
  });
});
