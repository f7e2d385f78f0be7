import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GateProcess, modernRequest } from '../helpers/gate.ts';

const gate = await GateProcess.start(['--rate-limit', '0']);

const MISSING = 'Bearer realm="paygate", error_description="an API key is required: send it in the X-API-Key header or as Authorization: Bearer <key>"';

test('logging/setLevel and server/discover, sent right after connecting, need no key: no 401 sends a client into OAuth', async () => {
  const init = await gate.mcp({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
  const session = { 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-11-25' };
  const setLevel = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'logging/setLevel', params: { level: 'debug' } }, { headers: session });
  const discover = await modernRequest(gate, 'server/discover', {}, { id: 2 });
  for (const reply of [setLevel, discover]) {
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.headers.get('www-authenticate'), null);
    assert.notEqual(reply.json.error?.code, -32001, reply.text);
  }
});

test('a 401 for a missing key carries a Bearer challenge without an error code, saying what to send', async () => {
  const read = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'test://secret' } });
  const batch = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/call_batch', params: { calls: [{ name: 'echo' }] } });
  for (const reply of [read, await gate.callTool(undefined, 'echo'), batch]) {
    assert.equal(reply.status, 401);
    assert.equal(reply.headers.get('www-authenticate'), MISSING);
  }
});

test('a 401 for a key that is not valid says invalid_token and why; no challenge names OAuth, and other refusals have none', async () => {
  const wrong = await gate.callTool('pg_not_a_real_key', 'echo');
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get('www-authenticate'), 'Bearer realm="paygate", error="invalid_token", error_description="the API key is not valid"');
  const { key, id } = await gate.createKey();
  assert.equal((await gate.admin('POST', '/keys/expiry', { id, expiresAt: '2020-01-01T00:00:00Z' })).status, 200);
  const expired = await gate.callTool(key, 'echo');
  assert.equal(expired.status, 401);
  assert.equal(expired.headers.get('www-authenticate'), 'Bearer realm="paygate", error="invalid_token", error_description="the API key expired at 2020-01-01T00:00:00.000Z"');
  assert.doesNotMatch(wrong.headers.get('www-authenticate')! + expired.headers.get('www-authenticate')!, /resource_metadata/);
  const poor = await gate.createKey({ credits: 0 });
  const unpaid = await gate.callTool(poor.key, 'echo');
  assert.equal(unpaid.json.error.data.reason, 'insufficient_credits');
  assert.equal(unpaid.headers.get('www-authenticate'), null);
});

test("GET /balance and the admin API answer 401 with their own challenges", async () => {
  const missing = await gate.request('GET', '/balance');
  assert.equal(missing.status, 401);
  assert.equal(missing.headers.get('www-authenticate'), MISSING);
  const wrong = await gate.request('GET', '/balance', { headers: { 'x-api-key': 'pg_not_a_real_key' } });
  assert.equal(wrong.headers.get('www-authenticate'), 'Bearer realm="paygate", error="invalid_token", error_description="the API key is not valid"');
  const admin = await gate.request('GET', '/keys', { headers: { 'x-admin-key': 'not the admin key' } });
  assert.equal(admin.status, 401);
  assert.equal(admin.headers.get('www-authenticate'), 'X-Admin-Key realm="paygate admin API"');
});
