import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SessionTable } from '../../server/src/http/sessions.ts';
import type { JsonRpcNotification, JsonRpcRequest } from '../../server/src/proxy/jsonrpc.ts';
import { Relay } from '../../server/src/proxy/relay.ts';
import { StdioBackend } from '../../server/src/proxy/stdio.ts';
import type { ClientChannel } from '../../server/src/proxy/upstream.ts';
import { BACKEND } from '../helpers/gate.ts';

let requests = 0;

/** A request without a session, as http/postChannel.ts makes one: its own origin, open until answered. */
function statelessChannel(received: (JsonRpcRequest | JsonRpcNotification)[]): ClientChannel {
  const n = ++requests;
  return {
    origin: `stateless-${n}`,
    keyHash: 'key-hash',
    requestId: n,
    sessionId: undefined,
    deliver(message) {
      received.push(message);
      return true;
    },
  };
}

async function relayOverTestBackend(t: { after: (fn: () => Promise<void>) => void }): Promise<Relay> {
  const backend = new StdioBackend({ label: 'test', command: process.execPath, args: [BACKEND], env: {}, cwd: undefined, clientInfo: { name: 'test', version: '1' } });
  await backend.start();
  const relay = new Relay(backend, new SessionTable({ idleMs: 60_000, maxSessions: 10, maxKeyless: 10, maxKeylessPerAddress: 10, onEnd: () => {} }));
  t.after(() => relay.close());
  return relay;
}

test('requests without a session leave nothing behind in the relay: progress tokens, and server requests answered or not', async (t) => {
  const relay = await relayOverTestBackend(t);
  const progress: (JsonRpcRequest | JsonRpcNotification)[] = [];
  await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      relay.forward('tools/call', { name: 'progress', arguments: {}, _meta: { progressToken: `mine-${i}` } }, statelessChannel(progress), 5000),
    ),
  );
  assert.equal(progress.filter((message) => message.method === 'notifications/progress').length, 60, 'every progress notification reached its caller');
  // A server request goes to the one client with calls in flight: these calls run one at a time.
  let timedOut = 0;
  for (let i = 0; i < 10; i++) {
    const received: (JsonRpcRequest | JsonRpcNotification)[] = [];
    const answered = i % 2 === 0;
    // Unanswered sampling requests end with the call's timeout: the client went away.
    const call = relay.forward('tools/call', { name: 'sample', arguments: { text: `call ${i}` } }, statelessChannel(received), answered ? 5000 : 200);
    const asked = await waitFor(() => received.find((message): message is JsonRpcRequest => 'id' in message));
    if (answered) assert.equal(relay.answer(asked.id, { result: { role: 'assistant', content: { type: 'text', text: 'ok' } } }, { origin: '', keyHash: 'key-hash' }), 'delivered');
    await call.catch(() => timedOut++);
  }
  assert.equal(timedOut, 5, 'the unanswered sampling calls timed out');
  assert.deepEqual(relay.held(), { origins: 0, progressTokens: 0, serverRequests: 0, subscriptions: 0 });
});

test('subscribing to a resource without a session is refused, saying updates need one, and holds nothing', async (t) => {
  const relay = await relayOverTestBackend(t);
  const answer = await relay.forward('resources/subscribe', { uri: 'test://secret' }, statelessChannel([]), 5000);
  assert.ok('error' in answer);
  assert.match(answer.error.message, /resources\/subscribe needs an MCP session/);
  assert.deepEqual(relay.held(), { origins: 0, progressTokens: 0, serverRequests: 0, subscriptions: 0 });
});

async function waitFor<T>(find: () => T | undefined): Promise<T> {
  for (let tries = 0; tries < 500; tries++) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('timed out waiting');
}
