import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { GateProcess, ROOT } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

const MODERN_BACKEND = path.join(ROOT, 'test', 'fixtures', 'modernBackend.ts');
const GREET_PRICE = 3;
const NAME = { action: 'accept', content: { name: 'octocat' } };

type Message = Record<string, any>;

/** What a 2025 client saw of one request: the requests the gate sent it on the answer stream, and the answer. */
interface Seen {
  asked: Message[];
  answer: Message;
}

describe('a 2025 client in front of a 2026-07-28 server that asks for input (input_required)', async () => {
  const dir = tempDir();
  const config = path.join(dir, 'paygate.json');
  fs.writeFileSync(config, JSON.stringify({ serverCommand: process.execPath, serverArgs: [MODERN_BACKEND], globalRateLimitPerMin: 0, toolPricing: { greet: { creditsPerCall: GREET_PRICE } } }));
  const gate = await GateProcess.start(['--config', config], { backend: 'from config', dir });

  /** A 2025-11-25 session opened with `key`, declaring `capabilities`. */
  async function session(key: string, capabilities: Record<string, unknown>): Promise<string> {
    const params = { protocolVersion: '2025-11-25', capabilities, clientInfo: { name: 'old-client', version: '1' } };
    const reply = await gate.mcp({ jsonrpc: '2.0', id: 0, method: 'initialize', params }, { key });
    const id = reply.headers.get('mcp-session-id');
    assert.ok(id, reply.text);
    return id;
  }

  function answerAs(key: string, sessionId: string, id: unknown, answer: Message) {
    return gate.mcp({ jsonrpc: '2.0', id, ...answer }, { key, headers: { 'mcp-session-id': sessionId } });
  }

  /** Calls greet in a session, reading its answer stream; `onAsked` answers each request the gate sends meanwhile. */
  async function greet(key: string, sessionId: string, onAsked: (request: Message) => Promise<void>): Promise<Seen> {
    const response = await fetch(`${gate.base}/mcp`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'mcp-session-id': sessionId, accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'greet', arguments: {} } }),
    });
    const asked: Message[] = [];
    if (!response.headers.get('content-type')?.includes('text/event-stream')) return { asked, answer: (await response.json()) as Message };
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the answer stream ended without an answer: ${buffered}`);
      buffered += decoder.decode(value, { stream: true });
      const blocks = buffered.split('\n\n');
      buffered = blocks.pop()!;
      for (const block of blocks) {
        const data = block.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n');
        if (!data) continue;
        const message = JSON.parse(data) as Message;
        if (message.method === undefined) {
          await reader.cancel();
          return { asked, answer: message };
        }
        asked.push(message);
        await onAsked(message);
      }
    }
  }

  async function usageOf(keyId: number): Promise<string[]> {
    const usage = await gate.admin('GET', `/usage?keyId=${keyId}&limit=100`);
    return usage.json.events.map((event: { status: string; creditsCharged: number }) => `${event.status}:${event.creditsCharged}`);
  }

  test('a client that declared elicitation is asked by elicitation/create, and its one tools/call completes, charged once', async () => {
    const { key, id } = await gate.createKey({ credits: 10 });
    const sessionId = await session(key, { elicitation: {} });
    const seen = await greet(key, sessionId, async (request) => {
      assert.equal((await answerAs(key, sessionId, request.id, { result: NAME })).status, 202);
    });
    assert.deepEqual(seen.asked.map((request) => [request.method, request.params.message]), [['elicitation/create', 'Who are you?']]);
    assert.equal(seen.answer.id, 7);
    assert.equal(seen.answer.result.content[0].text, 'hello octocat');
    assert.equal('resultType' in seen.answer.result, false, 'a 2025 client gets no 2026-07-28 result fields');
    assert.equal(await gate.balance(key), 10 - GREET_PRICE);
    assert.deepEqual(await usageOf(id), [`charged:${GREET_PRICE}`]);
  });

  test('a client that did not declare elicitation gets the error naming the revision it needs, and is not charged', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const sessionId = await session(key, { sampling: {} });
    const seen = await greet(key, sessionId, async () => assert.fail('the gate must not ask a client for what it cannot give'));
    assert.deepEqual(seen.asked, []);
    assert.equal(seen.answer.error.data.reason, 'input_required', JSON.stringify(seen.answer));
    assert.match(seen.answer.error.message, /2026-07-28/);
    assert.equal(await gate.balance(key), 10);
  });

  test('another key cannot answer the request the gate sent a client; the client itself then can', async () => {
    const owner = await gate.createKey({ credits: 10 });
    const other = await gate.createKey({ credits: 10 });
    const ownerSession = await session(owner.key, { elicitation: {} });
    const otherSession = await session(other.key, { elicitation: {} });
    const seen = await greet(owner.key, ownerSession, async (request) => {
      const stolen = await answerAs(other.key, otherSession, request.id, { result: { action: 'accept', content: { name: 'mallory' } } });
      assert.equal(stolen.status, 403, stolen.text);
      assert.match(stolen.json.error.message, /another client/);
      assert.equal((await answerAs(owner.key, ownerSession, request.id, { result: NAME })).status, 202);
    });
    assert.equal(seen.answer.result.content[0].text, 'hello octocat');
    assert.deepEqual([await gate.balance(owner.key), await gate.balance(other.key)], [10 - GREET_PRICE, 10]);
  });

  test('a client that refuses the input gets an error and is not charged', async () => {
    const { key, id } = await gate.createKey({ credits: 10 });
    const sessionId = await session(key, { elicitation: {} });
    const seen = await greet(key, sessionId, async (request) => {
      await answerAs(key, sessionId, request.id, { error: { code: -1, message: 'the user closed the dialog' } });
    });
    assert.equal(seen.answer.error.data.reason, 'input_not_given', JSON.stringify(seen.answer));
    assert.match(seen.answer.error.message, /the user closed the dialog; nothing was charged/);
    assert.equal(await gate.balance(key), 10);
    assert.deepEqual(await usageOf(id), ['refunded:0']);
  });

  test('the server is told the capabilities the gate can ask the client for on its behalf, and no others', async () => {
    const { key } = await gate.createKey();
    const capabilitiesSeen = async (declared: Record<string, unknown>) => {
      const sessionId = await session(key, declared);
      const reply = await gate.mcp({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'meta', arguments: {} } }, { key, headers: { 'mcp-session-id': sessionId } });
      return reply.json.result.structuredContent.meta['io.modelcontextprotocol/clientCapabilities'];
    };
    assert.deepEqual(await capabilitiesSeen({ elicitation: { form: {} }, sampling: {}, roots: { listChanged: true } }), { elicitation: { form: {} }, sampling: {} });
    assert.deepEqual(await capabilitiesSeen({ roots: {} }), {});
  });

  test('an answer to a request nobody sent is refused with 400', async () => {
    const { key } = await gate.createKey();
    const sessionId = await session(key, { elicitation: {} });
    const reply = await answerAs(key, sessionId, 'paygate-input-999999', { result: NAME });
    assert.equal(reply.status, 400, reply.text);
  });
});

describe('a 2026-07-28 client in front of a 2025 server that asks for sampling mid-call', async () => {
  const SAMPLE_PRICE = 2;
  const CALL_TIMEOUT_MS = 1500;
  const gate = await GateProcess.start(['--rate-limit', '0', '--tool-price', `sample:${SAMPLE_PRICE}`, '--call-timeout', String(CALL_TIMEOUT_MS)]);
  const MODEL = { role: 'assistant', content: { type: 'text', text: 'yes!' }, model: 'm' };

  /** A 2026-07-28 tools/call of sample, declaring sampling. */
  function sample(key: string, extra: Record<string, unknown> = {}, id = 1, capabilities: Record<string, unknown> = { sampling: {} }) {
    const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': capabilities };
    const headers = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'sample' };
    return gate.mcp({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'sample', arguments: { text: 'sky?' }, ...extra, _meta: meta } }, { key, headers });
  }

  async function firstAttempt(key: string): Promise<{ requestState: string; inputRequests: Record<string, Message> }> {
    const asked = await sample(key);
    assert.equal(asked.json.result?.resultType, 'input_required', asked.text);
    return asked.json.result;
  }

  const answering = (inputRequests: Record<string, Message>) => Object.fromEntries(Object.keys(inputRequests).map((key) => [key, MODEL]));

  test('the client gets the server\'s sampling request as input_required, its retry completes the same call, charged once', async () => {
    const { key, id } = await gate.createKey({ credits: 10 });
    const { requestState, inputRequests } = await firstAttempt(key);
    assert.match(requestState, /^pgrs1\./);
    assert.deepEqual(Object.values(inputRequests).map((request) => [request.method, request.params.messages[0].content.text]), [['sampling/createMessage', 'sky?']]);
    const done = await sample(key, { inputResponses: answering(inputRequests), requestState }, 2);
    assert.deepEqual([done.json.result.resultType, done.json.result.content[0].text], ['complete', 'sampled: yes!']);
    assert.equal(await gate.balance(key), 10 - SAMPLE_PRICE);
    const usage = await gate.admin('GET', `/usage?keyId=${id}&limit=100`);
    assert.deepEqual(usage.json.events.map((event: { status: string; creditsCharged: number }) => `${event.status}:${event.creditsCharged}`), [`charged:${SAMPLE_PRICE}`]);
  });

  test('another key cannot continue a key\'s held call; the owner still can, and only the owner is charged', async () => {
    const owner = await gate.createKey({ credits: 10 });
    const thief = await gate.createKey({ credits: 10 });
    const { requestState, inputRequests } = await firstAttempt(owner.key);
    const stolen = await sample(thief.key, { inputResponses: answering(inputRequests), requestState }, 2);
    assert.equal(stolen.json.error?.data?.reason, 'request_state_foreign', stolen.text);
    const done = await sample(owner.key, { inputResponses: answering(inputRequests), requestState }, 3);
    assert.equal(done.json.result.content[0].text, 'sampled: yes!');
    assert.deepEqual([await gate.balance(owner.key), await gate.balance(thief.key)], [10 - SAMPLE_PRICE, 10]);
  });

  test('a client that did not declare sampling is not asked: the server is told no, and its answer completes the call', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const done = await sample(key, {}, 1, { elicitation: {} });
    assert.deepEqual([done.json.result?.resultType, done.json.result?.content[0].text], ['complete', 'sampling refused'], done.text);
  });

  test('a held call with no retry ends at the call timeout and is refunded; a late retry is refused', async () => {
    const { key } = await gate.createKey({ credits: 10 });
    const { requestState, inputRequests } = await firstAttempt(key);
    await new Promise((resolve) => setTimeout(resolve, CALL_TIMEOUT_MS + 500));
    assert.equal(await gate.balance(key), 10);
    const late = await sample(key, { inputResponses: answering(inputRequests), requestState }, 2);
    assert.equal(late.json.error?.data?.reason, 'request_state_expired', late.text);
    assert.equal(await gate.balance(key), 10);
  });
});
