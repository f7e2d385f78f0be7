import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { BACKEND, GateProcess, ROOT, waitFor, type Reply } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';
import { alive } from '../helpers/process.ts';

const FILESYSTEM = path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js');

async function gateWith(config: Record<string, unknown>): Promise<GateProcess> {
  const file = path.join(tempDir(), 'paygate.json');
  fs.writeFileSync(file, JSON.stringify({ globalRateLimitPerMin: 0, ...config }));
  return GateProcess.start(['--config', file], { backend: 'from config' });
}

/** Opens an MCP session with `key`, declaring `capabilities`; its headers for later requests. */
async function openSession(gate: GateProcess, key: string, capabilities: Record<string, unknown> = {}): Promise<Record<string, string>> {
  const init = await gate.mcp({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities, clientInfo: { name: 't', version: '1' } } }, { key });
  const headers = { 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-06-18' };
  await gate.mcp({ jsonrpc: '2.0', method: 'notifications/initialized' }, { key, headers });
  return headers;
}

function call(gate: GateProcess, key: string, name: string, args: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<Reply> {
  return gate.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }, { key, headers: { accept: 'application/json', ...headers } });
}

/** The pid of the process that serves `key` (in `headers`' session), and how many tools it has run. */
async function processOf(gate: GateProcess, key: string, headers: Record<string, string> = {}): Promise<{ pid: number; executed: number }> {
  const reply = await call(gate, key, 'count', {}, headers);
  assert.ok(reply.json.result, reply.text);
  return reply.json.result.structuredContent;
}

/** A session's GET stream, with the messages it has carried so far. */
class SessionStream {
  readonly messages: Record<string, any>[] = [];
  readonly #abort = new AbortController();

  static async open(gate: GateProcess, key: string, headers: Record<string, string>): Promise<SessionStream> {
    const stream = new SessionStream();
    const response = await fetch(`${gate.base}/mcp`, { headers: { ...headers, accept: 'text/event-stream', 'x-api-key': key }, signal: stream.#abort.signal });
    assert.equal(response.status, 200);
    void stream.#read(response.body!.getReader());
    return stream;
  }

  async #read(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    let text = '';
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += decoder.decode(value, { stream: true });
        for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
          const data = text.slice(0, end).split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n');
          text = text.slice(end + 2);
          if (data) this.messages.push(JSON.parse(data));
        }
      }
    } catch {
      // Closed by close().
    }
  }

  /** The next message with `method` not taken yet. */
  async take(method: string): Promise<Record<string, any>> {
    return waitFor(`${method} on the session stream`, async () => {
      const index = this.messages.findIndex((message) => message.method === method);
      return index < 0 ? undefined : this.messages.splice(index, 1)[0];
    });
  }

  close(): void {
    this.#abort.abort();
  }
}

test('isolation key: each key has its own server process and state, reused across its calls, shown by key prefix in /status and counted in /health', async () => {
  const gate = await gateWith({ serverCommand: process.execPath, serverArgs: [BACKEND], isolation: 'key' });
  const alice = await gate.createKey();
  const bob = await gate.createKey();
  await call(gate, alice.key, 'echo', { text: 'a' });
  await call(gate, alice.key, 'echo', { text: 'b' });
  const alices = await processOf(gate, alice.key);
  const bobs = await processOf(gate, bob.key);
  assert.equal(alices.executed, 2);
  assert.equal(bobs.executed, 0, 'bob’s process has not seen alice’s calls');
  assert.notEqual(alices.pid, bobs.pid);
  assert.equal((await processOf(gate, alice.key)).pid, alices.pid, 'alice’s later call reuses her process');

  const status = await gate.admin('GET', '/status');
  const [pool] = Object.values(status.json.pools) as { isolation: string; processes: { key: string | null; kind: string; pid: number }[] }[];
  assert.equal(pool!.isolation, 'key');
  const byKey = Object.fromEntries(pool!.processes.filter((process) => process.kind === 'key').map((process) => [process.key, process.pid]));
  const keys: { id: number; keyPrefix: string }[] = (await gate.admin('GET', '/keys')).json;
  const prefixOf = async (id: number) => keys.find((key) => key.id === id)!.keyPrefix;
  assert.deepEqual(byKey, { [await prefixOf(alice.id)]: alices.pid, [await prefixOf(bob.id)]: bobs.pid });
  assert.doesNotMatch(status.text, /keyHash/);
  const health = await gate.health();
  assert.equal(health.status, 200);
  assert.deepEqual(Object.values(health.json.pools), [{ isolation: 'key', processes: 3, maxProcesses: 50, queued: 0 }], 'two keys and the catalog');
  assert.doesNotMatch(health.text, new RegExp(await prefixOf(alice.id)), '/health is public: it never says whose processes run');
});

test('isolation key: calls a new key sends while its process starts all succeed, each charged once, in that one process', async () => {
  const gate = await gateWith({ serverCommand: process.execPath, serverArgs: [BACKEND], isolation: 'key' });
  const { key } = await gate.createKey({ credits: 100 });
  const replies = await Promise.all(Array.from({ length: 6 }, (_, index) => call(gate, key, 'echo', { text: `call ${index}` })));
  assert.deepEqual(replies.map((reply) => reply.json.result?.content?.[0]?.text), Array.from({ length: 6 }, (_, index) => `call ${index}`));
  assert.equal(await gate.balance(key), 94);
  assert.equal((await processOf(gate, key)).executed, 6);
  assert.equal(await gate.balance(key), 93);
});

test('isolation key: a process idle for idleTimeoutSec is stopped, and the least recently used idle one makes room at maxProcesses', async () => {
  const gate = await gateWith({ serverCommand: process.execPath, serverArgs: [BACKEND], isolation: 'key', idleTimeoutSec: 2, maxProcesses: 2 });
  const keys = await Promise.all([gate.createKey(), gate.createKey(), gate.createKey()]);
  const first = await processOf(gate, keys[0]!.key);
  const second = await processOf(gate, keys[1]!.key);
  await processOf(gate, keys[0]!.key);
  const third = await processOf(gate, keys[2]!.key);
  await waitFor('the least recently used process stops', async () => (alive(second.pid) ? undefined : true));
  assert.ok(alive(first.pid) && alive(third.pid));
  await waitFor('idle processes stop', async () => (alive(first.pid) || alive(third.pid) ? undefined : true));
  const health = await gate.health();
  assert.equal(health.status, 200, 'a pool with no process running is healthy');
  assert.equal((Object.values(health.json.pools)[0] as { processes: number }).processes, 0);
  assert.equal((await processOf(gate, keys[0]!.key)).executed, 0, 'the key’s next call starts a fresh process');
});

test('isolation session: one process per session, stopped when the session is deleted; a call without a session is told to open one', async () => {
  const gate = await gateWith({ serverCommand: process.execPath, serverArgs: [BACKEND], isolation: 'session' });
  const { key } = await gate.createKey();
  const one = await openSession(gate, key);
  const two = await openSession(gate, key);
  const first = await processOf(gate, key, one);
  const second = await processOf(gate, key, two);
  assert.notEqual(first.pid, second.pid);
  assert.equal((await processOf(gate, key, one)).pid, first.pid);
  const deleted = await gate.request('DELETE', '/mcp', { headers: { ...one, 'x-api-key': key } });
  assert.equal(deleted.status, 204);
  await waitFor('the session’s process stops', async () => (alive(first.pid) ? undefined : true));
  assert.ok(alive(second.pid));

  const balance = await gate.balance(key);
  const stateless = await call(gate, key, 'echo');
  assert.equal(stateless.json.error.code, -32600);
  assert.match(stateless.json.error.message, /needs an MCP session: it runs one process per session \(isolation: "session"\)\. Send initialize first.*You were not charged/);
  assert.equal(await gate.balance(key), balance, 'the refused call is not charged');
  const listed = await gate.mcp({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
  assert.ok(listed.json.result.tools.some((tool: { name: string }) => tool.name === 'count'), 'tools are listed without a key or session');
});

test('isolation key with server-filesystem: a client’s roots reach its own key’s process and no other', async () => {
  const served = fs.realpathSync(tempDir());
  const own = fs.realpathSync(tempDir());
  const later = fs.realpathSync(tempDir());
  fs.writeFileSync(path.join(own, 'note.txt'), 'alice’s note');
  const gate = await gateWith({ serverCommand: process.execPath, serverArgs: [FILESYSTEM, served], isolation: 'key' });
  const alice = await gate.createKey();
  const bob = await gate.createKey();
  const session = await openSession(gate, alice.key, { roots: { listChanged: true } });
  const stream = await SessionStream.open(gate, alice.key, session);
  try {
    const allowed = async (key: string, headers: Record<string, string> = {}) => (await call(gate, key, 'list_allowed_directories', {}, headers)).json.result.content[0].text as string;
    const answerRoots = async (dir: string) => {
      const request = await stream.take('roots/list');
      const ack = await gate.mcp({ jsonrpc: '2.0', id: request.id, result: { roots: [{ uri: pathToFileURL(dir).href, name: 'mine' }] } }, { key: alice.key, headers: session });
      assert.equal(ack.status, 202);
    };
    const first = allowed(alice.key, session);
    await answerRoots(own);
    await first;
    await waitFor('alice’s roots apply to her process', async () => ((await allowed(alice.key, session)).includes(own) ? true : undefined));
    assert.equal((await call(gate, alice.key, 'read_text_file', { path: path.join(own, 'note.txt') }, session)).json.result.content[0].text, 'alice’s note');

    assert.match(await allowed(bob.key), new RegExp(served.replaceAll('/', '\\/')));
    assert.doesNotMatch(await allowed(bob.key), new RegExp(own.replaceAll('/', '\\/')), 'bob’s process keeps the configured folder');
    const denied = await call(gate, bob.key, 'read_text_file', { path: path.join(own, 'note.txt') });
    assert.doesNotMatch(denied.text, /alice’s note/);

    const changed = await gate.mcp({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }, { key: alice.key, headers: session });
    assert.equal(changed.status, 202);
    await answerRoots(later);
    await waitFor('alice’s changed roots apply', async () => ((await allowed(alice.key, session)).includes(later) ? true : undefined));
    assert.doesNotMatch(await allowed(bob.key), new RegExp(later.replaceAll('/', '\\/')));
  } finally {
    stream.close();
  }
});
