import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { BACKEND, GateProcess, ROOT, waitFor } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

const REMOTE = path.join(ROOT, 'test', 'fixtures', 'remoteBackend.ts');

/** Starts the remote test server (a real Streamable HTTP MCP server) and returns its URL. */
async function startRemote(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [REMOTE], { stdio: ['ignore', 'pipe', 'inherit'] });
  after(() => child.kill('SIGKILL'));
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the remote server exited with ${code}`)));
  });
  return { url, child };
}

const remote = await startRemote();
const config = path.join(tempDir(), 'paygate.json');
fs.writeFileSync(
  config,
  JSON.stringify({
    servers: [
      { prefix: 'a', serverCommand: process.execPath, serverArgs: [BACKEND] },
      { prefix: 'b', serverCommand: process.execPath, serverArgs: [BACKEND], env: { TEST_PAGE_SIZE: '4' } },
      { prefix: 'r', remoteUrl: remote.url },
    ],
    toolPricing: { 'a:slow': { creditsPerCall: 3 }, 'r:echo': { creditsPerCall: 2 } },
    globalRateLimitPerMin: 0,
  }),
);
const gate = await GateProcess.start(['--config', config], { backend: 'from config' });

function text(reply: { json: { result?: { content?: { text: string }[] } } }): string | undefined {
  return reply.json.result?.content?.[0]?.text;
}

async function initialize(key?: string): Promise<Record<string, string>> {
  const init = await gate.mcp({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }, key === undefined ? {} : { key });
  return { 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-06-18' };
}

async function counters(key: string): Promise<[number, number, number]> {
  const count = async (tool: string) => Number(text(await gate.callTool(key, tool)));
  return [await count('a:count'), await count('b:count'), await count('r:count')];
}

test('tools/list merges every server under its prefix, every page of each, with each prefixed tool priced', async () => {
  const reply = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
  const names: string[] = reply.json.result.tools.map((tool: { name: string }) => tool.name);
  assert.deepEqual(names.filter((name) => name.startsWith('b:')), names.filter((name) => name.startsWith('a:')).map((name) => name.replace('a:', 'b:')));
  assert.equal(reply.json.result.nextCursor, undefined);
  for (const name of ['a:echo', 'a:slow', 'b:echo', 'r:echo', 'r:whoami', 'r:progress']) assert.ok(names.includes(name), name);
  const price = (name: string) => reply.json.result.tools.find((tool: { name: string }) => tool.name === name)._meta['paygate/pricing'].creditsPerCall;
  assert.deepEqual([price('a:slow'), price('b:slow'), price('r:echo'), price('a:echo')], [3, 1, 2, 1]);
});

test('calls go to the server their prefix names, and are priced by the prefixed name', async () => {
  const { key } = await gate.createKey({ credits: 100 });
  assert.equal(text(await gate.callTool(key, 'a:echo', { text: 'to a' })), 'to a');
  assert.equal(text(await gate.callTool(key, 'b:echo', { text: 'to b' })), 'to b');
  assert.equal(text(await gate.callTool(key, 'r:echo', { text: 'to r' })), 'to r');
  assert.equal(await gate.balance(key), 100 - 1 - 1 - 2);
  const unknown = await gate.callTool(key, 'zz:echo');
  assert.equal(unknown.json.error.code, -32602);
  assert.match(unknown.json.error.message, /no server serves the tool "zz:echo".*prefixes a, b, r/);
});

test('each client session has its own upstream session on the remote server', async () => {
  const { key } = await gate.createKey();
  const first = await initialize(key);
  const second = await initialize(key);
  const whoami = async (headers: Record<string, string>) => text(await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'r:whoami' } }, { key, headers }));
  const firstId = await whoami(first);
  assert.match(firstId!, /^[0-9a-f-]{36}$/);
  assert.equal(await whoami(first), firstId);
  assert.notEqual(await whoami(second), firstId);
});

test('a batch may mix servers; one refused call stops the whole batch on every server', async () => {
  const { key } = await gate.createKey({ credits: 100, deniedTools: ['b:crash'] });
  const ok = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/call_batch', params: { calls: [{ name: 'a:echo', arguments: { text: '1' } }, { name: 'r:echo', arguments: { text: '2' } }, { name: 'b:echo', arguments: { text: '3' } }] } }, { key });
  assert.deepEqual(ok.json.result.results.map((r: { result: { content: { text: string }[] } }) => r.result.content[0]!.text), ['1', '2', '3']);
  assert.equal(ok.json.result.totalCreditsCharged, 4);
  const before = await counters(key);
  const refused = await gate.mcp({ jsonrpc: '2.0', id: 2, method: 'tools/call_batch', params: { calls: [{ name: 'a:echo' }, { name: 'r:echo' }, { name: 'b:crash' }] } }, { key });
  assert.equal(refused.json.error.data.failedIndex, 2);
  assert.deepEqual(await counters(key), before);
});

test('progress from a remote server streams to the client as it happens, before the result', async () => {
  const { key } = await gate.createKey();
  const response = await fetch(`${gate.base}/mcp`, {
    method: 'POST',
    headers: { 'x-api-key': key, accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'r:progress', _meta: { progressToken: 'p1' } } }),
  });
  const arrivals: { at: number; message: { method?: string; params?: { progressToken: string; progress: number }; result?: { content: { text: string }[] } } }[] = [];
  let buffer = '';
  for await (const chunk of response.body!) {
    buffer += Buffer.from(chunk).toString('utf8');
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const data = buffer.slice(0, end).split('\n').find((line) => line.startsWith('data: '));
      buffer = buffer.slice(end + 2);
      if (data) arrivals.push({ at: performance.now(), message: JSON.parse(data.slice(6)) });
    }
  }
  const progress = arrivals.filter((arrival) => arrival.message.method === 'notifications/progress');
  assert.deepEqual(progress.map((arrival) => [arrival.message.params!.progressToken, arrival.message.params!.progress]), [['p1', 1], ['p1', 2], ['p1', 3]]);
  const result = arrivals.at(-1)!;
  assert.equal(result.message.result!.content[0]!.text, 'progress done');
  assert.ok(result.at - progress[0]!.at >= 50, `the first progress came ${result.at - progress[0]!.at} ms before the result: it was held back`);
});

test('a server that is down fails only its own tools, refunded, and comes back', async () => {
  const { key } = await gate.createKey({ credits: 50 });
  const crash = await gate.callTool(key, 'a:crash');
  assert.equal(crash.json.error.code, -32002);
  const down = await gate.callTool(key, 'a:echo', { text: 'x' });
  assert.equal(down.json.error.code, -32002);
  assert.match(down.json.error.message, /not charged/);
  assert.equal(text(await gate.callTool(key, 'b:echo', { text: 'still up' })), 'still up');
  assert.equal(text(await gate.callTool(key, 'r:echo', { text: 'still up' })), 'still up');
  const health = await gate.health();
  assert.equal(health.status, 503);
  assert.equal(health.json.backends['a (a)'].state, 'down');
  assert.equal(await gate.balance(key), 50 - 1 - 2);
  await waitFor('server a to restart', async () => ((await gate.health()).status === 200 ? true : undefined));
  assert.equal(text(await gate.callTool(key, 'a:echo', { text: 'back' })), 'back');
});

test('--remote-url gates one remote server, tools unprefixed; an unreachable one fails its calls, refunded', async () => {
  const own = await startRemote();
  const single = await GateProcess.start(['--rate-limit', '0'], { backend: { remoteUrl: own.url } });
  const { key } = await single.createKey({ credits: 10 });
  assert.equal(text(await single.callTool(key, 'echo', { text: 'remote' })), 'remote');
  own.child.kill('SIGKILL');
  await new Promise((resolve) => own.child.once('exit', resolve));
  const unreachable = await single.callTool(key, 'echo', { text: 'gone' });
  assert.equal(unreachable.json.error.code, -32002);
  assert.match(unreachable.json.error.message, /could not be reached.*not charged/);
  assert.equal(await single.balance(key), 9);
  assert.equal((await single.health()).status, 503);
});

test('the multi-server example config runs as the README shows', async () => {
  const example = await GateProcess.start(['--config', path.join(ROOT, 'examples', 'multi-server.json'), '--no-state'], { backend: 'from config', cwd: ROOT });
  const { key } = await example.createKey({ credits: 10 });
  const batch = await example.mcp(
    { jsonrpc: '2.0', id: 1, method: 'tools/call_batch', params: { calls: [{ name: 'docs:search_docs', arguments: { query: 'pricing' } }, { name: 'demo:echo', arguments: { text: 'hi' } }] } },
    { key },
  );
  assert.equal(batch.json.result.totalCreditsCharged, 3);
  assert.equal(batch.json.result.results[1].result.content[0].text, 'hi');
});
