import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KeyRecord } from '../../server/src/gate/types.ts';
import { cacheScopeFor, clientEra, discoverResult, isRefusal, LEGACY_CLIENT, shapeAnswer, type ClientEra } from '../../server/src/http/era.ts';
import type { ForwardedRequest } from '../../server/src/proxy/backend.ts';
import { notificationForServer, paramsForServer } from '../../server/src/proxy/eras.ts';
import { handshake } from '../../server/src/proxy/handshake.ts';
import type { JsonObject, JsonRpcMessage, JsonRpcResponse } from '../../server/src/proxy/jsonrpc.ts';

const MODERN: ClientEra = { modern: true, version: '2026-07-28' };
const ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

function request(method: string, params: JsonObject = {}): JsonRpcMessage {
  return { jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: ENVELOPE } };
}

const modernHeaders = (method: string, name?: string) => ({
  'mcp-protocol-version': '2026-07-28',
  'mcp-method': method,
  ...(name === undefined ? {} : { 'mcp-name': name }),
});

describe('the era of a request, and its headers', () => {
  test('a request without the envelope or a modern header is legacy, whatever else its headers say', () => {
    assert.deepEqual(clientEra({ 'mcp-protocol-version': '2025-11-25', 'mcp-method': 'other' }, { jsonrpc: '2.0', id: 1, method: 'tools/list' }), LEGACY_CLIENT);
    assert.deepEqual(clientEra({}, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', _meta: { progressToken: 1 } } }), LEGACY_CLIENT);
  });

  test('a request whose headers match its body is modern', () => {
    assert.deepEqual(clientEra(modernHeaders('tools/call', 'echo'), request('tools/call', { name: 'echo' })), MODERN);
    assert.deepEqual(clientEra(modernHeaders('resources/read', 'file:///a b'), request('resources/read', { uri: 'file:///a b' })), MODERN);
    assert.deepEqual(clientEra(modernHeaders('tools/list'), request('tools/list')), MODERN);
  });

  test('a base64-encoded Mcp-Name is compared decoded', () => {
    const name = '天気';
    const encoded = `=?base64?${Buffer.from(name).toString('base64')}?=`;
    assert.deepEqual(clientEra(modernHeaders('tools/call', encoded), request('tools/call', { name })), MODERN);
  });

  for (const [what, headers, body] of [
    ['a missing MCP-Protocol-Version', { 'mcp-method': 'tools/list' }, request('tools/list')],
    ['an MCP-Protocol-Version unlike the body\'s', { ...modernHeaders('tools/list'), 'mcp-protocol-version': '2025-11-25' }, request('tools/list')],
    ['a modern header on a body without the envelope', modernHeaders('tools/list'), { jsonrpc: '2.0', id: 1, method: 'tools/list' }],
    ['a missing Mcp-Method', { 'mcp-protocol-version': '2026-07-28' }, request('tools/list')],
    ['an Mcp-Method unlike the body\'s', modernHeaders('tools/list'), request('prompts/list')],
    ['a missing Mcp-Name on tools/call', modernHeaders('tools/call'), request('tools/call', { name: 'echo' })],
    ['an Mcp-Name unlike the body\'s tool', modernHeaders('tools/call', 'echo'), request('tools/call', { name: 'rm' })],
    ['an Mcp-Name unlike the body\'s resource', modernHeaders('resources/read', 'test://a'), request('resources/read', { uri: 'test://b' })],
    ['an Mcp-Name on a prompts/get without a name', modernHeaders('prompts/get', 'hello'), request('prompts/get')],
  ] as const) {
    test(`${what} is a header mismatch (-32020)`, () => {
      const era = clientEra(headers, body as JsonRpcMessage);
      assert.ok(isRefusal(era));
      assert.equal(era.code, -32020);
      assert.match(era.message, /^Header mismatch: /);
    });
  }

  test('an envelope naming a revision the gate does not serve statelessly is -32022 with the supported list', () => {
    const body: JsonRpcMessage = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2025-11-25' } } };
    const era = clientEra({ 'mcp-protocol-version': '2025-11-25', 'mcp-method': 'tools/list' }, body);
    assert.ok(isRefusal(era));
    assert.deepEqual([era.code, era.data], [-32022, { supported: ['2026-07-28'], requested: '2025-11-25' }]);
  });

  test('notifications and responses are not held to the request headers', () => {
    assert.deepEqual(clientEra({ 'mcp-protocol-version': '2026-07-28' }, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } }), MODERN);
    assert.deepEqual(clientEra({}, { jsonrpc: '2.0', id: 3, result: {} }), LEGACY_CLIENT);
  });
});

describe('answers in the shape of the client\'s era', () => {
  const list = { result: { tools: [{ name: 'echo' }] } };

  test('a modern client gets resultType on every result and cache hints on cacheable ones', () => {
    assert.deepEqual(shapeAnswer(MODERN, 'tools/call', { result: { content: [] } }, 'public'), { result: { content: [], resultType: 'complete' } });
    assert.deepEqual(shapeAnswer(MODERN, 'tools/list', list, 'public'), { result: { tools: [{ name: 'echo' }], resultType: 'complete', ttlMs: 0, cacheScope: 'public' } });
  });

  test('the server\'s own hints are kept, but never made more public than the gate says', () => {
    const hinted = { result: { contents: [], resultType: 'complete', ttlMs: 5000, cacheScope: 'public' } };
    assert.deepEqual(shapeAnswer(MODERN, 'resources/read', hinted, 'private'), { result: { contents: [], resultType: 'complete', ttlMs: 5000, cacheScope: 'private' } });
    const private_ = { result: { tools: [], ttlMs: -4, cacheScope: 'private' } };
    assert.deepEqual(shapeAnswer(MODERN, 'tools/list', private_, 'public'), { result: { tools: [], resultType: 'complete', ttlMs: 0, cacheScope: 'private' } });
  });

  test('an input_required result carries no cache hints and reaches a modern client as it is', () => {
    const interim = { result: { resultType: 'input_required', requestState: 's' } };
    assert.deepEqual(shapeAnswer(MODERN, 'resources/read', interim, 'private'), interim);
  });

  test('a legacy client gets results without the modern fields, and errors unchanged', () => {
    const modern = { result: { content: [], resultType: 'complete', ttlMs: 1, cacheScope: 'public' } };
    assert.deepEqual(shapeAnswer(LEGACY_CLIENT, 'tools/call', modern, 'public'), { result: { content: [] } });
    const error = { error: { code: -32601, message: 'no' } };
    assert.equal(shapeAnswer(LEGACY_CLIENT, 'x', error, 'public'), error);
    assert.equal(shapeAnswer(MODERN, 'x', error, 'public'), error);
  });

  test('a legacy client gets an error for an input_required result it could not answer', () => {
    const answer = shapeAnswer(LEGACY_CLIENT, 'tools/call', { result: { resultType: 'input_required', inputRequests: {} } }, 'public');
    assert.ok('error' in answer);
    assert.match(answer.error.message, /2026-07-28/);
  });

  test('lists filtered by a key\'s tool rules and key-guarded reads are private', () => {
    const record = (allowedTools: string[], deniedTools: string[]) => ({ allowedTools, deniedTools }) as unknown as KeyRecord;
    assert.equal(cacheScopeFor('tools/list', undefined), 'public');
    assert.equal(cacheScopeFor('tools/list', record([], [])), 'public');
    assert.equal(cacheScopeFor('tools/list', record(['echo'], [])), 'private');
    assert.equal(cacheScopeFor('tools/list', record([], ['rm'])), 'private');
    assert.equal(cacheScopeFor('resources/read', undefined), 'private');
  });

  test('server/discover lists only the stateless revisions and the serverInfo in _meta', () => {
    const result = discoverResult({ capabilities: { tools: {} }, serverInfo: { name: 's', version: '1' }, instructions: 'i' });
    assert.deepEqual(result.supportedVersions, ['2026-07-28']);
    assert.deepEqual(result._meta, { 'io.modelcontextprotocol/serverInfo': { name: 's', version: '1' } });
    assert.deepEqual([result.resultType, result.cacheScope], ['complete', 'public']);
  });
});

describe('requests in the shape of the server\'s era', () => {
  const gate = { name: 'paygate-mcp', version: '1' };

  test('a modern server gets the gate\'s envelope when the client sent none, and the client\'s own otherwise', () => {
    const params = paramsForServer(true, { name: 'echo', _meta: { progressToken: 7 } }, gate);
    assert.deepEqual(params, {
      name: 'echo',
      _meta: { progressToken: 7, 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': gate, 'io.modelcontextprotocol/clientCapabilities': {} },
    });
    const own = { name: 'echo', _meta: { ...ENVELOPE, 'io.modelcontextprotocol/clientCapabilities': { elicitation: {} } } };
    assert.equal(paramsForServer(true, own, gate), own);
    assert.deepEqual(paramsForServer(true, undefined, gate)?._meta, { ...ENVELOPE, 'io.modelcontextprotocol/clientInfo': gate });
  });

  test('a legacy server gets the params without the envelope, keeping other _meta', () => {
    const params = { name: 'echo', _meta: { ...ENVELOPE, 'io.modelcontextprotocol/logLevel': 'info', progressToken: 3, 'io.modelcontextprotocol/related-task': { taskId: 't' } } };
    assert.deepEqual(paramsForServer(false, params, gate), { name: 'echo', _meta: { progressToken: 3, 'io.modelcontextprotocol/related-task': { taskId: 't' } } });
    assert.deepEqual(paramsForServer(false, { name: 'echo', _meta: ENVELOPE }, gate), { name: 'echo' });
    const plain = { name: 'echo' };
    assert.equal(paramsForServer(false, plain, gate), plain);
  });

  test('handshake notifications are not sent to modern servers', () => {
    assert.equal(notificationForServer(true, 'notifications/initialized'), false);
    assert.equal(notificationForServer(true, 'notifications/roots/list_changed'), false);
    assert.equal(notificationForServer(true, 'notifications/cancelled'), true);
    assert.equal(notificationForServer(false, 'notifications/initialized'), true);
  });
});

describe('the backend handshake', () => {
  /** A link whose server answers each method with what `answers` gives, recording what it was sent. */
  function link(answers: Record<string, (id: number) => JsonRpcResponse>) {
    const sent: string[] = [];
    let nextId = 1;
    return {
      sent,
      request(method: string): ForwardedRequest {
        sent.push(method);
        const id = nextId++;
        const answer = answers[method]?.(id) ?? { jsonrpc: '2.0', id, error: { code: -32601, message: `no ${method}` } };
        return { upstreamId: id, response: Promise.resolve(answer) };
      },
      notify(method: string) {
        sent.push(method);
      },
    };
  }
  const clientInfo = { name: 'gate', version: '1' };

  test('a server that initializes is legacy, and is told it is initialized', async () => {
    const server = link({ initialize: (id) => ({ jsonrpc: '2.0', id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'old', version: '1' } } }) });
    const identity = await handshake(server, clientInfo, 's', 1000);
    assert.equal(identity.protocolVersion, '2025-11-25');
    assert.deepEqual(server.sent, ['initialize', 'notifications/initialized']);
  });

  test('a server that refuses initialize and answers server/discover is modern', async () => {
    const server = link({
      initialize: (id) => ({ jsonrpc: '2.0', id, error: { code: -32022, message: 'modern only', data: { supported: ['2026-07-28'] } } }),
      'server/discover': (id) => ({
        jsonrpc: '2.0',
        id,
        result: { resultType: 'complete', supportedVersions: ['2026-07-28'], capabilities: { tools: {} }, instructions: 'hi', _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'new', version: '2' } } },
      }),
    });
    const identity = await handshake(server, clientInfo, 's', 1000);
    assert.deepEqual(identity, { protocolVersion: '2026-07-28', capabilities: { tools: {} }, serverInfo: { name: 'new', version: '2' }, instructions: 'hi' });
    assert.deepEqual(server.sent, ['initialize', 'server/discover']);
  });

  test('a server that refuses both fails the start with both reasons', async () => {
    const server = link({
      initialize: (id) => ({ jsonrpc: '2.0', id, error: { code: -32603, message: 'broken' } }),
      'server/discover': (id) => ({ jsonrpc: '2.0', id, error: { code: -32022, message: 'no', data: { supported: ['2027-01-01'] } } }),
    });
    await assert.rejects(handshake(server, clientInfo, 's', 1000), /refused initialize: broken .*speaks only 2027-01-01/);
  });
});
