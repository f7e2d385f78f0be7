import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { GateProcess, modernRequest as modern, ROOT, waitFor, type Reply } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

const MODERN_BACKEND = path.join(ROOT, 'test', 'fixtures', 'modernBackend.ts');
const GREET_PRICE = 3;
const ANSWER = { who: { action: 'accept', content: { name: 'octocat' } } };

function writeConfig(file: string, greetPrice: number): void {
  const config = { serverCommand: process.execPath, serverArgs: [MODERN_BACKEND], globalRateLimitPerMin: 0, toolPricing: { greet: { creditsPerCall: greetPrice } } };
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(config));
  fs.renameSync(`${file}.tmp`, file);
}

describe('Multi Round-Trip Requests through the gate (a 2026-07-28 client and server)', async () => {
  const dir = tempDir();
  const config = path.join(dir, 'paygate.json');
  writeConfig(config, GREET_PRICE);
  const gate = await GateProcess.start(['--config', config], { backend: 'from config', dir });
  const counter = await gate.createKey({ credits: 1_000_000 });

  /** How many tool calls the server has run (count itself excluded). */
  async function executed(): Promise<number> {
    return (await gate.callTool(counter.key, 'count')).json.result.structuredContent.executed;
  }

  /** The first attempt of greet: the server asks for a name; nothing is charged. */
  async function firstAttempt(key: string, args: Record<string, unknown> = {}): Promise<string> {
    const asked = await modern(gate, 'tools/call', { name: 'greet', arguments: args }, { key });
    assert.equal(asked.json.result.resultType, 'input_required', asked.text);
    return asked.json.result.requestState;
  }

  function retry(key: string, requestState: unknown, options: { id?: number; args?: Record<string, unknown> } = {}): Promise<Reply> {
    return modern(gate, 'tools/call', { name: 'greet', arguments: options.args ?? {}, inputResponses: ANSWER, requestState }, { key, id: options.id ?? 2 });
  }

  function assertRefused(reply: Reply, reason: string): void {
    assert.equal(reply.status, 200);
    assert.equal(reply.json.error?.code, -32602, reply.text);
    assert.equal(reply.json.error.data.reason, reason);
    assert.match(reply.json.error.message, /nothing was charged/);
  }

  test('the client gets the gate\'s sealed envelope, not the server\'s requestState, and the first attempt is not charged', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const envelope = await firstAttempt(key);
    assert.match(envelope, /^pgrs1\./);
    assert.notEqual(envelope, 'asked-for-name');
    assert.equal(await gate.balance(key), 10);
  });

  test('the retry with the envelope completes (the server got its own state back) and is charged once, at the tool\'s price', async () => {
    const { key, id } = await gate.createKey({ credits: 10 });
    const done = await retry(key, await firstAttempt(key));
    assert.deepEqual([done.json.result.resultType, done.json.result.content[0].text], ['complete', 'hello octocat']);
    assert.equal(done.headers.get('x-credits-remaining'), String(10 - GREET_PRICE));
    assert.equal(await gate.balance(key), 10 - GREET_PRICE);
    const usage = await gate.admin('GET', `/usage?keyId=${id}&limit=100`);
    const statuses = usage.json.events.map((event: { status: string; creditsCharged: number }) => `${event.status}:${event.creditsCharged}`).sort();
    assert.deepEqual(statuses, [`charged:${GREET_PRICE}`, 'refunded:0']);
  });

  test('a replayed envelope is refused before it reaches the server, and charges nothing', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const envelope = await firstAttempt(key);
    await retry(key, envelope);
    const ran = await executed();
    assertRefused(await retry(key, envelope, { id: 3 }), 'request_state_used');
    assert.equal(await executed(), ran);
    assert.equal(await gate.balance(key), 10 - GREET_PRICE);
  });

  test('two retries with the same envelope at once: one completes, the other is refused, and the call is charged once', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const envelope = await firstAttempt(key);
    const replies = await Promise.all([retry(key, envelope, { id: 2 }), retry(key, envelope, { id: 3 })]);
    const completed = replies.filter((reply) => reply.json.result?.resultType === 'complete');
    const refused = replies.filter((reply) => reply.json.error?.data?.reason === 'request_state_used');
    assert.deepEqual([completed.length, refused.length], [1, 1]);
    assert.equal(await gate.balance(key), 10 - GREET_PRICE);
  });

  test('another key cannot use a key\'s envelope: refused, nothing charged to either, and the owner still can', async () => {
    const owner = await gate.createKey({ credits: 10 });
    const thief = await gate.createKey({ credits: 10 });
    const envelope = await firstAttempt(owner.key);
    const ran = await executed();
    assertRefused(await retry(thief.key, envelope), 'request_state_foreign');
    assert.equal(await executed(), ran);
    assert.deepEqual([await gate.balance(owner.key), await gate.balance(thief.key)], [10, 10]);
    assert.equal((await retry(owner.key, envelope, { id: 4 })).json.result.content[0].text, 'hello octocat');
    assert.deepEqual([await gate.balance(owner.key), await gate.balance(thief.key)], [10 - GREET_PRICE, 10]);
  });

  test('a retry without a key is refused as unauthorized, not forwarded', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const envelope = await firstAttempt(key);
    const keyless = await modern(gate, 'tools/call', { name: 'greet', arguments: {}, inputResponses: ANSWER, requestState: envelope }, { id: 2 });
    assert.equal(keyless.status, 401);
    assert.equal(await gate.balance(key), 10);
  });

  test('an altered envelope, or the server\'s own state sent around the gate, is refused and charges nothing', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const envelope = await firstAttempt(key);
    const last = envelope.at(-2) === 'A' ? 'B' : 'A';
    const ran = await executed();
    assertRefused(await retry(key, `${envelope.slice(0, -2)}${last}${envelope.at(-1)}`), 'request_state_invalid');
    assertRefused(await retry(key, 'asked-for-name', { id: 3 }), 'request_state_invalid');
    assert.equal(await executed(), ran);
    assert.equal(await gate.balance(key), 10);
  });

  test('a retry with other arguments than its first attempt is refused', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const envelope = await firstAttempt(key, { text: 'first' });
    assertRefused(await retry(key, envelope, { args: { text: 'other' } }), 'request_state_mismatch');
    assert.equal(await gate.balance(key), 10);
    assert.equal((await retry(key, envelope, { id: 3, args: { text: 'first' } })).json.result.content[0].text, 'hello octocat');
  });

  test('a retry the gate refuses before it runs (the tool not allowed for now) keeps its envelope for a later retry', async () => {
    const { key, id } = await gate.createKey({ credits: 10 });
    const envelope = await firstAttempt(key);
    await gate.admin('POST', '/keys/acl', { id, allowedTools: ['echo'] });
    const refused = await retry(key, envelope);
    assert.equal(refused.json.error.data.reason, 'tool_not_allowed', refused.text);
    await gate.admin('POST', '/keys/acl', { id, allowedTools: [] });
    assert.equal((await retry(key, envelope, { id: 3 })).json.result.content[0].text, 'hello octocat');
    assert.equal(await gate.balance(key), 10 - GREET_PRICE);
  });

  test('an input_required item of a batch carries an envelope, and its retry by tools/call is charged once', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const batch = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/call_batch', params: { calls: [{ name: 'greet', arguments: {} }, { name: 'echo', arguments: { text: 'x' } }] } }, { key });
    const [greet] = batch.json.result.results;
    assert.deepEqual([greet.result.resultType, greet.creditsCharged], ['input_required', 0]);
    assert.equal(await gate.balance(key), 9);
    assert.equal((await retry(key, greet.result.requestState)).json.result.content[0].text, 'hello octocat');
    assert.equal(await gate.balance(key), 9 - GREET_PRICE);
  });

  test('a resources/read that asks for input gets an envelope too: another key\'s retry is refused, the owner\'s reads', async () => {
    const owner = await gate.createKey();
    const other = await gate.createKey();
    const asked = await modern(gate, 'resources/read', { uri: 'test://ask' }, { key: owner.key });
    assert.equal(asked.json.result.resultType, 'input_required');
    const params = { uri: 'test://ask', inputResponses: { consent: { action: 'accept', content: {} } }, requestState: asked.json.result.requestState };
    assert.match(params.requestState, /^pgrs1\./);
    assertRefused(await modern(gate, 'resources/read', params, { key: other.key, id: 2 }), 'request_state_foreign');
    const read = await modern(gate, 'resources/read', params, { key: owner.key, id: 3 });
    assert.deepEqual([read.json.result.resultType, read.json.result.contents[0].text], ['complete', 'modern contents']);
  });

  // Last: it changes the price for the tests after it.
  test('a retry keeps its first attempt\'s price when the price changes in between', async () => {
    const { key } = await gate.createKey({ credits: 20 });
    const envelope = await firstAttempt(key);
    writeConfig(config, 7);
    await waitFor('the new price', async () => (gate.stderr.includes('changed: applied') ? true : undefined));
    assert.equal((await retry(key, envelope)).json.result.content[0].text, 'hello octocat');
    assert.equal(await gate.balance(key), 20 - GREET_PRICE);
    const fresh = await retry(key, await firstAttempt(key), { id: 5 });
    assert.equal(fresh.json.result.content[0].text, 'hello octocat');
    assert.equal(await gate.balance(key), 20 - GREET_PRICE - 7);
  });
});
