import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GateProcess } from '../helpers/gate.ts';

const gate = await GateProcess.start(['--rate-limit', '0']);

test('two clients using the same JSON-RPC id at the same moment each get their own answer', async () => {
  const alice = await gate.createKey();
  const bob = await gate.createKey();
  const rounds = await Promise.all(
    Array.from({ length: 20 }, (_, i) => [
      gate.callTool(alice.key, 'slow', { ms: 5, text: `alice-${i}` }, 7),
      gate.callTool(bob.key, 'slow', { ms: 5, text: `bob-${i}` }, 7),
    ]).flat(),
  );
  rounds.forEach((reply, index) => {
    const who = index % 2 === 0 ? 'alice' : 'bob';
    assert.equal(reply.json.id, 7);
    assert.equal(reply.json.result.content[0].text, `${who}-${Math.floor(index / 2)}`);
  });
});

test('40 concurrent calls on a key with 10 credits: exactly 10 are served and charged', async () => {
  const { key } = await gate.createKey({ credits: 10 });
  const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => gate.callTool(key, 'echo', { text: `n${i}` }, i)));
  const served = replies.filter((reply) => reply.json.result);
  const refused = replies.filter((reply) => reply.json.error?.data?.reason === 'insufficient_credits');
  assert.equal(served.length, 10);
  assert.equal(refused.length, 30);
  assert.equal(await gate.balance(key), 0);
});

test('a JSON-RPC batch array is refused with -32600 and nothing runs or is charged', async () => {
  const { key } = await gate.createKey({ credits: 5 });
  const counter = await gate.createKey();
  const executedBefore = (await gate.callTool(counter.key, 'count')).json.result.structuredContent.executed;
  const withAndWithoutKey: Record<string, string>[] = [{}, { 'x-api-key': key }];
  for (const headers of withAndWithoutKey) {
    const reply = await gate.request('POST', '/mcp', {
      headers,
      body: [
        { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } },
        { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'y' } } },
      ],
    });
    assert.equal(reply.status, 400);
    assert.equal(reply.json.error.code, -32600);
  }
  const executedAfter = (await gate.callTool(counter.key, 'count')).json.result.structuredContent.executed;
  assert.equal(executedAfter, executedBefore);
  assert.equal(await gate.balance(key), 5);
});

test('listing methods are free without a key; resources/read, prompts/get and tools/call need one', async () => {
  for (const method of ['tools/list', 'resources/list', 'prompts/list']) {
    const reply = await gate.mcp({ jsonrpc: '2.0', id: 1, method });
    assert.equal(reply.status, 200, method);
    assert.ok(reply.json.result, method);
  }
  for (const [method, params] of [
    ['resources/read', { uri: 'test://secret' }],
    ['prompts/get', { name: 'hello' }],
    ['tools/call', { name: 'echo', arguments: {} }],
  ] as const) {
    const reply = await gate.mcp({ jsonrpc: '2.0', id: 1, method, params });
    assert.equal(reply.status, 401, method);
    assert.equal(reply.json.error.data.reason, 'missing_api_key');
    assert.doesNotMatch(reply.text, /the secret/);
  }
  const { key } = await gate.createKey();
  const read = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'test://secret' } }, { key });
  assert.equal(read.json.result.contents[0].text, 'the secret');
  const wrong = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'test://secret' } }, { key: 'pg_not_a_real_key' });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json.error.data.reason, 'invalid_api_key');
});

test('the key also works as Authorization: Bearer, and answers carry credit and rate headers', async () => {
  const { key } = await gate.createKey({ credits: 3 });
  const reply = await gate.mcp(
    { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } },
    { headers: { authorization: `Bearer ${key}` } },
  );
  assert.equal(reply.json.result.content[0].text, 'hi');
  assert.equal(reply.headers.get('x-credits-remaining'), '2');
});

test('tools/list shows each tool price, and a key with an allow-list sees only its tools', async () => {
  const all = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
  const echo = all.json.result.tools.find((tool: { name: string }) => tool.name === 'echo');
  assert.deepEqual(echo._meta['paygate/pricing'], { creditsPerCall: 1, creditsPerKbInput: 0, rateLimitPerMin: 0 });
  const { key } = await gate.createKey({ allowedTools: ['echo', 'count'] });
  const mine = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { key });
  assert.deepEqual(mine.json.result.tools.map((tool: { name: string }) => tool.name), ['echo', 'count']);
  const refused = await gate.callTool(key, 'slow');
  assert.equal(refused.json.error.code, -32402);
  assert.equal(refused.json.error.data.reason, 'tool_not_allowed');
});

test('a multibyte character split across the backend output chunks arrives intact', async () => {
  const { key } = await gate.createKey();
  const reply = await gate.callTool(key, 'split', { text: 'price: 5 € — ok 🌍' });
  assert.equal(reply.json.result.content[0].text, 'price: 5 € — ok 🌍');
});

test('lines on the backend stdout that are not valid JSON-RPC are ignored: the real answer still arrives', async () => {
  const { key } = await gate.createKey();
  const reply = await gate.callTool(key, 'noisy', { text: 'the real answer' });
  assert.deepEqual(reply.json.result.content, [{ type: 'text', text: 'the real answer' }]);
});

test('sessions: initialize returns a session id, requests on it work, DELETE ends it, an unknown one is 404', async () => {
  const { key } = await gate.createKey();
  const init = await gate.mcp({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }, { key });
  assert.equal(init.status, 200);
  assert.equal(init.json.result.protocolVersion, '2025-06-18');
  assert.equal(init.json.result.serverInfo.name, 'test-backend');
  const session = init.headers.get('mcp-session-id')!;
  assert.ok(session);
  const headers = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
  assert.equal((await gate.mcp({ jsonrpc: '2.0', method: 'notifications/initialized' }, { key, headers })).status, 202);
  const call = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'in session' } } }, { key, headers });
  assert.equal(call.json.result.content[0].text, 'in session');
  assert.equal((await gate.request('DELETE', '/mcp', { headers: { ...headers, 'x-api-key': key } })).status, 204);
  const gone = await gate.mcp({ jsonrpc: '2.0', id: 2, method: 'ping' }, { key, headers });
  assert.equal(gone.status, 404);
});

test('an unsupported MCP-Protocol-Version, a wrong Host or a foreign Origin is refused', async () => {
  const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
  assert.equal((await gate.mcp(ping, { headers: { 'mcp-protocol-version': '1999-01-01' } })).status, 400);
  assert.equal((await gate.mcp(ping, { headers: { 'mcp-protocol-version': '2025-03-26' } })).status, 200);
  assert.equal((await gate.mcp(ping, { headers: { origin: 'http://evil.example.com' } })).status, 403);
  assert.equal((await gate.mcp(ping, { headers: { origin: `http://localhost:${gate.port}` } })).status, 200);
  const rebinding = await new Promise<number>((resolve, reject) => {
    import('node:http').then(({ request }) => {
      const req = request({ host: '127.0.0.1', port: gate.port, path: '/mcp', method: 'POST', headers: { host: 'evil.example.com', 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(JSON.stringify(ping));
    }, reject);
  });
  assert.equal(rebinding, 403);
});

test('progress from the backend reaches the caller on an SSE answer, with the caller token', async () => {
  const { key } = await gate.createKey();
  const reply = await gate.request('POST', '/mcp', {
    headers: { 'x-api-key': key, accept: 'application/json, text/event-stream' },
    body: { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'progress', arguments: {}, _meta: { progressToken: 'mine' } } },
  });
  assert.match(reply.headers.get('content-type')!, /text\/event-stream/);
  const events = reply.text.split('\n\n').filter((block) => block.includes('data: ')).map((block) => JSON.parse(block.split('data: ')[1]!));
  const progress = events.filter((event) => event.method === 'notifications/progress');
  assert.deepEqual(progress.map((event) => [event.params.progressToken, event.params.progress]), [['mine', 1], ['mine', 2], ['mine', 3]]);
  assert.equal(events.at(-1).id, 5);
  assert.equal(events.at(-1).result.content[0].text, 'progress done');
});

test('a sampling request from the backend goes to the calling client, whose answer goes back', async () => {
  const { key } = await gate.createKey();
  const headers = { 'x-api-key': key, accept: 'application/json, text/event-stream' };
  const response = await fetch(`${gate.base}/mcp`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'sample', arguments: { text: 'hello?' } } }),
  });
  const reader = response.body!.getReader();
  let text = '';
  let answered = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
    const request = text.match(/data: (\{[^\n]*"sampling\/createMessage"[^\n]*\})/);
    if (request && !answered) {
      answered = true;
      const { id } = JSON.parse(request[1]!);
      const ack = await gate.mcp({ jsonrpc: '2.0', id, result: { role: 'assistant', content: { type: 'text', text: 'yes!' }, model: 'm' } }, { key });
      assert.equal(ack.status, 202);
    }
  }
  assert.ok(answered);
  assert.match(text, /sampled: yes!/);
});
