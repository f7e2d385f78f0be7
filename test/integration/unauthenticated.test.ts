import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { GateProcess, type Reply } from '../helpers/gate.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.';

/** A random name that follows MCP's tool-name rule, so that only the key decides the call. */
function randomToolName(): string {
  const bytes = randomBytes(1 + (randomBytes(1)[0]! % 128));
  return [...bytes].map((byte) => ALPHABET[byte % ALPHABET.length]).join('');
}

/** Runs `count` requests, `width` at a time. */
async function flood(count: number, width: number, send: (index: number) => Promise<Reply>): Promise<Reply[]> {
  const replies: Reply[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) replies.push(await send(next++));
    }),
  );
  return replies;
}

function initialize(gate: GateProcess, key?: string): Promise<Reply> {
  const params = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'test', version: '1' } };
  return gate.mcp({ jsonrpc: '2.0', id: 1, method: 'initialize', params }, key === undefined ? {} : { key });
}

test('2,000 keyless tool calls with random names write no usage event and no per-tool row, and are counted per address', async () => {
  const gate = await GateProcess.start(['--refused-limit', '0']);
  const replies = await flood(2000, 16, (i) => gate.callTool(i % 2 ? `pg_${randomBytes(16).toString('hex')}` : undefined, randomToolName(), {}, i));
  assert.ok(replies.every((reply) => reply.status === 401));
  assert.equal(replies.filter((reply) => reply.json.error.data.reason === 'missing_api_key').length, 1000);

  const usage = await gate.admin('GET', '/usage');
  assert.equal(usage.json.count, 0, 'no usage event');
  const status = (await gate.admin('GET', '/status')).json;
  assert.deepEqual(status.usage.perTool, {}, 'no per-tool row');
  assert.equal(status.usage.totalDenied, 0);
  const { unauthenticated } = status;
  assert.equal(unauthenticated.total, 2000);
  assert.deepEqual(unauthenticated.byReason, { missing_api_key: 1000, invalid_api_key: 1000 });
  assert.equal(unauthenticated.tracked, 1);
  assert.equal(unauthenticated.dropped, 0);
  assert.equal(unauthenticated.topAddresses.length, 1);
  assert.equal(unauthenticated.topAddresses[0].address, '127.0.0.1');
  assert.equal(unauthenticated.topAddresses[0].refused, 2000);
  assert.ok(Date.parse(unauthenticated.topAddresses[0].lastAt) > Date.now() - 60_000);

  assert.equal(await gate.stop(), 0);
  const db = new DatabaseSync(path.join(gate.dir, '.paygate', 'state.db'), { readOnly: true });
  try {
    assert.equal(db.prepare('SELECT count(*) AS n FROM events').get()!.n, 0);
    assert.equal(db.prepare('SELECT count(*) AS n FROM tool_stats').get()!.n, 0);
  } finally {
    db.close();
  }
});

test('tool names past 128 characters or outside the MCP alphabet are refused with -32602 naming the rule, before the key or price', async () => {
  const gate = await GateProcess.start(['--refused-limit', '0', '--rate-limit', '0']);
  const { key } = await gate.createKey({ credits: 10 });
  const badNames = ['a'.repeat(129), 'read file', 'search/v2', 'écho', '', 'echo\u0000'];
  for (const name of badNames) {
    for (const who of [key, undefined, 'pg_not_a_key']) {
      const single = await gate.callTool(who, name);
      assert.equal(single.status, 200, `${JSON.stringify(name)} with ${who ?? 'no key'}: a 401 would mean the key was looked at first`);
      assert.equal(single.json.error.code, -32602);
      assert.equal(single.json.error.data.reason, 'invalid_tool_name');
      assert.match(single.json.error.message, /^params\.name is not a valid tool name: .*1 to 128 characters from A-Z, a-z, 0-9, "_", "-", "\." and ":"/);
      const batch = await gate.mcp({ jsonrpc: '2.0', id: 2, method: 'tools/call_batch', params: { calls: [{ name: 'echo' }, { name }] } }, who === undefined ? {} : { key: who });
      assert.equal(batch.json.error.code, -32602);
      assert.match(batch.json.error.message, /^params\.calls\[1\]\.name is not a valid tool name/);
    }
  }
  assert.match((await gate.callTool(key, 'a'.repeat(129))).json.error.message, /it is 129 characters long/);
  assert.match((await gate.callTool(key, 'read file')).json.error.message, /it has " " at position 4/);
  const longest = `${'a'.repeat(124)}echo`;
  assert.equal((await gate.callTool(key, longest)).json.error.message, `unknown tool ${longest}`, '128 characters pass the rule and reach the server');

  assert.equal(await gate.balance(key), 9, 'only the 128-character call was charged');
  assert.equal((await gate.admin('GET', '/usage')).json.count, 1);
  const { unauthenticated } = (await gate.admin('GET', '/status')).json;
  assert.equal(unauthenticated.byReason.invalid_tool_name, badNames.length * 2 * 2, 'keyless bad names are counted; a valid key\'s are not');
});

test('per-tool stats keep rows for offered and priced tools only; every other name counts under "(unknown)"', async () => {
  const gate = await GateProcess.start(['--rate-limit', '0', '--tool-price', 'priced_only:2']);
  const { key } = await gate.createKey({ credits: 10 });
  const { key: broke } = await gate.createKey({ credits: 0 });
  assert.equal((await gate.callTool(key, 'echo', { text: 'hi' })).json.result.content[0].text, 'hi');
  assert.equal((await gate.callTool(key, 'no_such_tool')).json.error.message, 'unknown tool no_such_tool');
  assert.equal((await gate.callTool(key, 'another.missing-tool')).json.error.code, -32602);
  await gate.callTool(key, 'priced_only');
  assert.equal((await gate.callTool(broke, 'third_missing_tool')).json.error.data.reason, 'insufficient_credits');

  const { perTool, totalDenied } = (await gate.admin('GET', '/status')).json.usage;
  assert.deepEqual(perTool, {
    echo: { calls: 1, credits: 1, denied: 0 },
    priced_only: { calls: 1, credits: 2, denied: 0 },
    '(unknown)': { calls: 2, credits: 2, denied: 1 },
  });
  assert.equal(totalDenied, 1);
  const events = (await gate.admin('GET', '/usage')).json.events.map((event: { tool: string }) => event.tool);
  assert.deepEqual(events, ['echo', 'no_such_tool', 'another.missing-tool', 'priced_only', 'third_missing_tool'], 'usage events keep the names the keys called');
});

test('past its limit of refused requests an address gets 429 with Retry-After, while its valid key still works', async () => {
  const page = 'https://app.example.com';
  const gate = await GateProcess.start(['--refused-limit', '5', '--rate-limit', '0', '--allowed-origin', page]);
  const { key } = await gate.createKey({ credits: 100 });
  for (let i = 0; i < 10; i++) {
    assert.equal((await gate.request('POST', '/mcp', { headers: { 'x-api-key': key, 'content-type': 'application/json' }, raw: '{not json' })).status, 400);
    assert.equal((await gate.callTool(key, 'bad name')).json.error.code, -32602);
  }
  assert.equal((await gate.callTool(key, 'echo', { text: 'ok' })).json.result.content[0].text, 'ok', 'mistakes made with a valid key never count');

  for (let i = 0; i < 3; i++) assert.equal((await gate.callTool(undefined, 'echo')).status, 401, 'a missing key is 401 until the limit');
  assert.equal((await gate.request('POST', '/mcp', { headers: { 'content-type': 'application/json' }, raw: '[]' })).status, 400);
  assert.equal((await gate.callTool(undefined, 'bad name')).json.error.code, -32602);

  const limited = await gate.callTool(undefined, 'echo');
  assert.equal(limited.status, 429);
  const retryAfter = Number(limited.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 12, `Retry-After: ${retryAfter}`);
  assert.equal(limited.json.error.data.reason, 'refused_request_limit');
  assert.equal(limited.json.error.data.retryAfterSeconds, retryAfter);
  assert.match(limited.json.error.message, /too many refused requests from 127\.0\.0\.1: without a valid API key, 5 refused requests a minute are allowed/);
  assert.equal((await gate.callTool('pg_not_a_key', 'echo')).status, 429);
  assert.equal((await initialize(gate)).status, 429);
  const fromPage = await gate.request('POST', '/mcp', { headers: { origin: page, 'content-type': 'application/json', accept: 'application/json' }, raw: '{}' });
  assert.equal(fromPage.status, 429);
  assert.equal(fromPage.headers.get('access-control-allow-origin'), page, 'a page on a listed origin can read why it is refused');

  const served = await gate.callTool(key, 'echo', { text: 'still served' });
  assert.equal(served.status, 200);
  assert.equal(served.json.result.content[0].text, 'still served');
  assert.equal((await initialize(gate, key)).status, 200);

  const { unauthenticated } = (await gate.admin('GET', '/status')).json;
  assert.deepEqual(unauthenticated.byReason, { missing_api_key: 3, bad_request: 1, invalid_tool_name: 1, refused_request_limit: 4 });
  assert.equal(unauthenticated.limitPerMin, 5);
});

test('a flood of keyless initialize requests cannot end the session of a client that initialized with a key', async () => {
  const gate = await GateProcess.start(['--rate-limit', '0']);
  const { key } = await gate.createKey();
  const opened = await initialize(gate, key);
  const sessionId = opened.headers.get('mcp-session-id');
  assert.ok(sessionId);

  // More keyless sessions than the gate keeps of any kind (10,000).
  const flooded = await flood(10_100, 16, () => initialize(gate));
  assert.ok(flooded.every((reply) => reply.status === 200 && reply.headers.get('mcp-session-id')));

  const call = await gate.mcp({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'still here' } } }, { key, headers: { 'mcp-session-id': sessionId } });
  assert.equal(call.status, 200, call.text);
  assert.equal(call.json.result.content[0].text, 'still here');
  const { sessions } = (await gate.health()).json;
  assert.equal(sessions, 101, 'one keyed session and the 100 newest keyless sessions of the address');
});
