import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { GateProcess, modernRequest as modern, ROOT } from '../helpers/gate.ts';

const MODERN = '2026-07-28';
const MODERN_BACKEND = path.join(ROOT, 'test', 'fixtures', 'modernBackend.ts');


async function executed(gate: GateProcess, key: string): Promise<number> {
  return (await gate.callTool(key, 'count')).json.result.structuredContent.executed;
}

describe('a 2026-07-28 client in front of a 2025 server', async () => {
  const gate = await GateProcess.start(['--rate-limit', '0']);

  test('server/discover is answered by the gate without a key, with the batch capability and the server identity', async () => {
    const reply = await modern(gate, 'server/discover', {});
    assert.equal(reply.status, 200);
    const { result } = reply.json;
    assert.equal(result.resultType, 'complete');
    assert.deepEqual(result.supportedVersions, [MODERN]);
    assert.equal(result.capabilities.experimental['paygate/batch'].method, 'tools/call_batch');
    assert.ok(result.capabilities.tools);
    assert.equal(result._meta['io.modelcontextprotocol/serverInfo'].name, 'test-backend');
    assert.equal(typeof result.ttlMs, 'number');
    assert.equal(result.cacheScope, 'public');
  });

  test('lists carry resultType, ttlMs and cacheScope; a list filtered by the key says private, and so does resources/read', async () => {
    const keyless = await modern(gate, 'tools/list', {});
    assert.equal(keyless.status, 200);
    assert.deepEqual([keyless.json.result.resultType, keyless.json.result.ttlMs, keyless.json.result.cacheScope], ['complete', 0, 'public']);
    const { key, id } = await gate.createKey();
    await gate.admin('POST', '/keys/acl', { id, allowedTools: ['echo'] });
    const filtered = await modern(gate, 'tools/list', {}, { key });
    assert.deepEqual(filtered.json.result.tools.map((tool: { name: string }) => tool.name), ['echo']);
    assert.equal(filtered.json.result.cacheScope, 'private');
    const read = await modern(gate, 'resources/read', { uri: 'test://secret' }, { key });
    assert.deepEqual([read.json.result.resultType, read.json.result.cacheScope, read.json.result.contents[0].text], ['complete', 'private', 'the secret']);
  });

  test('a tools/call gets a result of the 2026-07-28 shape and is billed once, to the key of the request', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const other = await gate.createKey({ credits: 10 });
    const reply = await modern(gate, 'tools/call', { name: 'echo', arguments: { text: 'modern hello' } }, { key });
    assert.equal(reply.status, 200);
    assert.equal(reply.json.result.resultType, 'complete');
    assert.equal(reply.json.result.content[0].text, 'modern hello');
    assert.equal(reply.headers.get('x-credits-remaining'), '9');
    assert.equal(await gate.balance(key), 9);
    assert.equal(await gate.balance(other.key), 10);
  });

  test('the server receives the request without the 2026-07-28 envelope, which a 2025 server may refuse', async () => {
    const { key } = await gate.createKey();
    const reply = await modern(gate, 'tools/call', { name: 'echo', arguments: { text: 'x' }, _meta: { progressToken: 'p1' } }, { key });
    assert.equal(reply.json.result.content[0].text, 'x');
  });

  for (const [problem, headers] of [
    ['an Mcp-Name that is not the body\'s tool', { 'mcp-name': 'fail' }],
    ['an Mcp-Method that is not the body\'s method', { 'mcp-method': 'tools/list' }],
    ['an MCP-Protocol-Version that is not the body\'s', { 'mcp-protocol-version': '2025-11-25' }],
  ] as const) {
    test(`${problem} is refused with HTTP 400 and -32020 before anything runs or is billed`, async () => {
      const { key } = await gate.createKey({ credits: 5 });
      const counter = await gate.createKey();
      const before = await executed(gate, counter.key);
      const reply = await modern(gate, 'tools/call', { name: 'echo', arguments: { text: 'x' } }, { key, id: 42, headers });
      assert.equal(reply.status, 400);
      assert.equal(reply.json.error.code, -32020);
      assert.equal(reply.json.id, 42);
      assert.match(reply.json.error.message, /^Header mismatch: /);
      assert.equal(await executed(gate, counter.key), before);
      assert.equal(await gate.balance(key), 5);
    });
  }

  test('a 2026-07-28 tools/call without Mcp-Method or Mcp-Name is refused with -32020 and not billed', async () => {
    const { key } = await gate.createKey({ credits: 5 });
    const withoutName = await gate.mcp(
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} } } },
      { key, headers: { 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call' } },
    );
    assert.equal(withoutName.status, 400);
    assert.equal(withoutName.json.error.code, -32020);
    assert.match(withoutName.json.error.message, /Mcp-Name header is missing/);
    const withoutMethod = await modern(gate, 'tools/call', { name: 'echo', arguments: {} }, { key, headers: { 'mcp-method': '' } });
    assert.equal(withoutMethod.status, 400);
    assert.equal(await gate.balance(key), 5);
  });

  test('an Mcp-Name in the base64 form of 2026-07-28 is decoded before it is compared', async () => {
    const { key } = await gate.createKey();
    const reply = await modern(gate, 'tools/call', { name: 'echo', arguments: { text: 'b64' } }, { key, headers: { 'mcp-name': `=?base64?${Buffer.from('echo').toString('base64')}?=` } });
    assert.equal(reply.status, 200);
    assert.equal(reply.json.result.content[0].text, 'b64');
  });

  test('a method the server does not have is a 404 for a 2026-07-28 client', async () => {
    const { key } = await gate.createKey();
    const reply = await modern(gate, 'no/such', {}, { key });
    assert.equal(reply.status, 404);
    assert.equal(reply.json.error.code, -32601);
  });

  test('a 2025-11-25 client of the same gate still gets results without the 2026-07-28 fields', async () => {
    const { key } = await gate.createKey();
    const list = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { headers: { 'mcp-protocol-version': '2025-11-25' } });
    assert.equal(list.json.result.resultType, undefined);
    assert.equal(list.json.result.ttlMs, undefined);
    const call = await gate.callTool(key, 'echo', { text: 'old' });
    assert.deepEqual(Object.keys(call.json.result).sort(), ['content']);
  });
});

describe('a 2025 client in front of a server that speaks only 2026-07-28', async () => {
  const gate = await GateProcess.start(['--rate-limit', '0'], { backend: { server: `"${process.execPath}" "${MODERN_BACKEND}"` } });

  test('initialize, tools/list and tools/call work, billed once, with results of the 2025 shape', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    // With its key: a session is bound to the key that opened it.
    const init = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'old', version: '1' } } }, { key });
    assert.equal(init.json.result.protocolVersion, '2025-11-25');
    assert.equal(init.json.result.serverInfo.name, 'modern-backend');
    assert.match(init.json.result.instructions, /2026-07-28 era/);
    const session = init.headers.get('mcp-session-id')!;
    const headers = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
    const list = await gate.mcp({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, { key, headers });
    assert.deepEqual(list.json.result.tools.map((tool: { name: string }) => tool.name), ['echo', 'count', 'meta', 'greet', 'announce', 'listens']);
    assert.deepEqual([list.json.result.resultType, list.json.result.ttlMs, list.json.result.cacheScope], [undefined, undefined, undefined]);
    const call = await gate.mcp({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'from 2025' } } }, { key, headers });
    assert.deepEqual(call.json.result, { content: [{ type: 'text', text: 'from 2025' }] });
    assert.equal(await gate.balance(key), 9);
    const read = await gate.mcp({ jsonrpc: '2.0', id: 4, method: 'resources/read', params: { uri: 'test://modern' } }, { key, headers });
    assert.equal(read.json.result.contents[0].text, 'modern contents');
    assert.equal(read.json.result.cacheScope, undefined);
  });

  test('the server gets the 2026-07-28 envelope from the gate on every request, and never a handshake notification', async () => {
    const { key } = await gate.createKey();
    await gate.mcp({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
    const reply = await gate.callTool(key, 'meta');
    const meta = reply.json.result.structuredContent.meta;
    assert.equal(meta['io.modelcontextprotocol/protocolVersion'], MODERN);
    assert.deepEqual(meta['io.modelcontextprotocol/clientCapabilities'], {});
    assert.equal(meta['io.modelcontextprotocol/clientInfo'].name, 'paygate-mcp');
    assert.equal((await gate.callTool(key, 'count')).json.result.structuredContent.violations, 0);
  });

  test('a 2026-07-28 client of the same gate gets the server\'s own cache hints and passes its capabilities through', async () => {
    const { key } = await gate.createKey();
    const list = await modern(gate, 'tools/list', {});
    assert.deepEqual([list.json.result.resultType, list.json.result.ttlMs, list.json.result.cacheScope], ['complete', 60_000, 'public']);
    const reply = await modern(gate, 'tools/call', { name: 'meta', arguments: {} }, { key });
    const meta = reply.json.result.structuredContent.meta;
    assert.deepEqual(meta['io.modelcontextprotocol/clientCapabilities'], { elicitation: {} });
    assert.equal(meta['io.modelcontextprotocol/clientInfo'].name, 'era-test');
  });

  test('an input_required result reaches a 2026-07-28 client as it is and is not charged; the retry that completes is charged once', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const asked = await modern(gate, 'tools/call', { name: 'greet', arguments: {} }, { key });
    assert.equal(asked.json.result.resultType, 'input_required');
    assert.equal(asked.json.result.inputRequests.who.method, 'elicitation/create');
    assert.equal(await gate.balance(key), 10);
    const inputResponses = { who: { action: 'accept', content: { name: 'octocat' } } };
    const retry = { name: 'greet', arguments: {}, inputResponses, requestState: asked.json.result.requestState };
    const done = await modern(gate, 'tools/call', retry, { key, id: 2 });
    assert.deepEqual([done.json.result.resultType, done.json.result.content[0].text], ['complete', 'hello octocat']);
    assert.equal(await gate.balance(key), 9);
  });

  test('a 2025 client gets an input_required result as an error naming the revision it needs, and is not charged', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const old = await gate.callTool(key, 'greet');
    assert.equal(old.json.error.data.reason, 'input_required');
    assert.match(old.json.error.message, /2026-07-28/);
    assert.equal(await gate.balance(key), 10);
  });
});
