import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ADMIN_KEY, GateProcess } from '../helpers/gate.ts';

const gate = await GateProcess.start(['--rate-limit', '0']);
const { key } = await gate.createKey({ credits: 1_000_000 });

const RUNS = { numRuns: 150 };

async function expectClientError(status: number, what: string): Promise<void> {
  assert.ok(status < 500, `${what} got HTTP ${status}`);
}

const anyBody = fc.oneof(
  fc.jsonValue().map((value) => JSON.stringify(value)),
  fc.string(),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);

const jsonRpcLike = fc.record(
  {
    jsonrpc: fc.oneof(fc.constant('2.0'), fc.jsonValue()),
    id: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.jsonValue()),
    method: fc.oneof(
      fc.constantFrom('tools/call', 'tools/list', 'initialize', 'ping', 'resources/read', 'prompts/get', 'notifications/cancelled', 'tools/call_batch'),
      fc.string(),
      fc.jsonValue(),
    ),
    params: fc.oneof(
      fc.jsonValue(),
      fc.record({ name: fc.oneof(fc.constantFrom('echo', 'count', 'fail'), fc.jsonValue()), arguments: fc.jsonValue() }, { requiredKeys: [] }),
    ),
    result: fc.jsonValue(),
    error: fc.jsonValue(),
  },
  { requiredKeys: [] },
);

test('any body POSTed to /mcp gets an answer below 500, with or without a key', async () => {
  await fc.assert(
    fc.asyncProperty(anyBody, fc.boolean(), async (body, withKey) => {
      const reply = await gate.request('POST', '/mcp', { headers: { 'content-type': 'application/json', ...(withKey ? { 'x-api-key': key } : {}) }, raw: body });
      await expectClientError(reply.status, `body ${JSON.stringify(body).slice(0, 200)}`);
    }),
    RUNS,
  );
});

test('JSON-RPC-shaped messages with wrong types everywhere never get a 5xx', async () => {
  await fc.assert(
    fc.asyncProperty(jsonRpcLike, async (message) => {
      const reply = await gate.mcp(message, { key });
      await expectClientError(reply.status, JSON.stringify(message).slice(0, 300));
      if (reply.status === 200 && reply.json?.error) assert.equal(typeof reply.json.error.message, 'string');
    }),
    RUNS,
  );
});

test('odd headers on /mcp never get a 5xx', async () => {
  const header = fc.oneof(fc.string({ maxLength: 60 }).filter((s) => /^[\x20-\x7e]*$/.test(s)), fc.constantFrom('', '*/*', 'text/event-stream', 'application/json', '2025-06-18'));
  await fc.assert(
    fc.asyncProperty(header, header, header, header, async (accept, contentType, session, version) => {
      const reply = await gate.request('POST', '/mcp', {
        headers: { accept, 'content-type': contentType, 'mcp-session-id': session, 'mcp-protocol-version': version, 'x-api-key': key },
        raw: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
      });
      await expectClientError(reply.status, `headers ${JSON.stringify([accept, contentType, session, version])}`);
    }),
    { numRuns: 100 },
  );
});

test('any body POSTed to an admin endpoint gets 2xx or 4xx', async () => {
  const paths = ['/keys', '/topup', '/keys/revoke', '/keys/rotate', '/keys/acl', '/keys/expiry', '/keys/quota', '/keys/tags', '/keys/ip', '/keys/search', '/limits', '/keys/import'];
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...paths), fc.oneof(anyBody, jsonRpcLike.map((v) => JSON.stringify(v)), fc.dictionary(fc.constantFrom('key', 'id', 'credits', 'tags', 'ips', 'name', 'expiresAt', 'quota', 'namespace'), fc.jsonValue()).map((v) => JSON.stringify(v))), async (path, body) => {
      const reply = await gate.request('POST', path, { headers: { 'x-admin-key': ADMIN_KEY, 'content-type': 'application/json' }, raw: body });
      await expectClientError(reply.status, `${path} ${body.slice(0, 200)}`);
    }),
    RUNS,
  );
});

test('odd query strings on the admin reports never get a 5xx', async () => {
  const value = fc.oneof(fc.string({ maxLength: 30 }), fc.integer().map(String), fc.constantFrom('-1', '1e9', 'NaN', '2026-11-01', ''));
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('/usage', '/keys', '/status', '/namespaces'), fc.dictionary(fc.constantFrom('limit', 'offset', 'cursor', 'since', 'key', 'keyId', 'namespace', 'format'), value), async (path, query) => {
      const reply = await gate.admin('GET', `${path}?${new URLSearchParams(query)}`);
      await expectClientError(reply.status, `${path}?${new URLSearchParams(query)}`);
    }),
    { numRuns: 100 },
  );
});

test('a body over the limit gets 413 and the gate keeps serving', async () => {
  const reply = await gate.request('POST', '/mcp', {
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    raw: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x'.repeat(2 * 1024 * 1024) } } }),
  });
  assert.equal(reply.status, 413);
  assert.match(reply.json.error.message, /limit/);
  assert.equal((await gate.health()).status, 200);
  assert.equal((await gate.callTool(key, 'echo', { text: 'after' })).json.result.content[0].text, 'after');
});

test('after all that, the gate is healthy and its books balance', async () => {
  assert.equal((await gate.health()).status, 200);
  const status = await gate.admin('GET', '/status');
  const balance = await gate.balance(key);
  assert.equal(balance + status.json.usage.totalCreditsSpent, 1_000_000);
});
