/**
 * Tenants sharing one stdio server (isolation "shared"): against the real reference servers
 * (@modelcontextprotocol/server-filesystem and server-everything), no tenant sees or changes
 * another's roots, tasks, log level, subscriptions, server requests or session.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';
import { GateProcess, ROOT, waitFor, type Reply } from '../helpers/gate.ts';
import { collectEvents, parseEvents, type Message } from '../helpers/sse.ts';
import { tempDir } from '../helpers/tmp.ts';

const FILESYSTEM = path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js');
const EVERYTHING = path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const VERSION = '2025-11-25';


function writeConfig(file: string, config: unknown): void {
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(config));
  fs.renameSync(`${file}.tmp`, file);
}

async function startGate(config: unknown): Promise<{ gate: GateProcess; configFile: string }> {
  const configFile = path.join(tempDir(), 'paygate.json');
  writeConfig(configFile, config);
  return { gate: await GateProcess.start(['--config', configFile], { backend: 'from config' }), configFile };
}

/** Every JSON-RPC message of an answer, whether it came as JSON or as an event stream. */
function messagesOf(reply: Reply): Message[] {
  if (!reply.headers.get('content-type')?.includes('text/event-stream')) return reply.json === undefined ? [] : [reply.json];
  return parseEvents(reply.text);
}

/** Opens a session as an SDK client does; `key` is sent with every request of it. */
async function openSession(gate: GateProcess, key: string | undefined, capabilities: Record<string, unknown> = {}): Promise<Record<string, string>> {
  const init = await gate.mcp(
    { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: VERSION, capabilities, clientInfo: { name: 'tenant', version: '1' } } },
    key === undefined ? {} : { key },
  );
  assert.equal(init.status, 200, init.text);
  const headers: Record<string, string> = { 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': VERSION };
  if (key !== undefined) headers['x-api-key'] = key;
  assert.equal((await gate.mcp({ jsonrpc: '2.0', method: 'notifications/initialized' }, { headers })).status, 202);
  return headers;
}

/** An event stream read as it arrives: a session's GET stream, or the answer to a POST. */
interface LiveStream {
  status: number;
  messages: Message[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

async function liveStream(gate: GateProcess, method: 'GET' | 'POST', headers: Record<string, string>, body?: unknown): Promise<LiveStream> {
  const controller = new AbortController();
  const response = await fetch(`${gate.base}/mcp`, {
    method,
    headers: { accept: 'application/json, text/event-stream', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: controller.signal,
  });
  const messages: Message[] = [];
  const ended = response.body ? collectEvents(response.body, messages) : Promise.resolve();
  const stream = { status: response.status, messages, ended, close: () => controller.abort() };
  after(() => stream.close());
  return stream;
}

function textOf(reply: Reply): string {
  return reply.json?.result?.content?.[0]?.text ?? '';
}

test('server-filesystem: a keyless client cannot re-root the shared server; every tenant keeps the configured roots', async () => {
  const data = fs.realpathSync(tempDir());
  const other = fs.realpathSync(tempDir());
  fs.writeFileSync(path.join(data, 'note.txt'), 'tenant data');
  const config = {
    serverCommand: process.execPath,
    serverArgs: [FILESYSTEM, data, other],
    roots: [{ uri: pathToFileURL(data).href, name: 'data' }],
    globalRateLimitPerMin: 0,
  };
  const { gate, configFile } = await startGate(config);
  const { key } = await gate.createKey({ credits: 1000 });
  const allowed = async () => textOf(await gate.callTool(key, 'list_allowed_directories'));
  // The server asked for roots at its start, and got the config's: only `data`, not the command line's `other`.
  await waitFor('the configured roots', async () => ((await allowed()).includes(data) && !(await allowed()).includes(other) ? true : undefined));

  const attacker = await openSession(gate, undefined, { roots: { listChanged: true } });
  const rootsRequests: Message[] = [];
  for (let round = 0; round < 10 && rootsRequests.length === 0; round++) {
    // Requests in flight while the server reacts to the notification: the attacker would be the one client to ask.
    const lists = Array.from({ length: 8 }, (_, index) => gate.mcp({ jsonrpc: '2.0', id: 100 + index, method: 'tools/list' }, { headers: attacker }));
    assert.equal((await gate.mcp({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }, { headers: attacker })).status, 202);
    for (const reply of await Promise.all(lists)) {
      for (const message of messagesOf(reply)) {
        if (message.method !== 'roots/list') continue;
        rootsRequests.push(message);
        await gate.mcp({ jsonrpc: '2.0', id: message.id, result: { roots: [{ uri: 'file:///etc', name: 'etc' }] } }, { headers: attacker });
      }
    }
  }
  assert.deepEqual(rootsRequests, [], 'no client is ever asked for its roots');
  await new Promise((resolve) => setTimeout(resolve, 300));

  const hostname = await gate.callTool(key, 'read_text_file', { path: '/etc/hostname' });
  assert.equal(hostname.json.result.isError, true);
  assert.match(textOf(hostname), /denied|outside allowed/i);
  assert.equal(textOf(await gate.callTool(key, 'read_text_file', { path: path.join(data, 'note.txt') })), 'tenant data');
  assert.ok(!(await allowed()).includes('/etc'));

  // Roots changed in the config reach the running server, which is told to ask again.
  const startsBefore = gate.stderr.split('Secure MCP Filesystem Server running').length;
  writeConfig(configFile, { ...config, roots: [{ uri: pathToFileURL(other).href }] });
  await waitFor('the reloaded roots', async () => ((await allowed()).includes(other) && !(await allowed()).includes(data) ? true : undefined));
  assert.equal(gate.stderr.split('Secure MCP Filesystem Server running').length, startsBefore, 'the server was not restarted');
});

const EVERYTHING_CONFIG = {
  serverCommand: process.execPath,
  serverArgs: [EVERYTHING, 'stdio'],
  globalRateLimitPerMin: 0,
  toolPricing: { 'simulate-research-query': { creditsPerCall: 5 } },
};
const gate = (await startGate(EVERYTHING_CONFIG)).gate;

function rpcOn(target: GateProcess, method: string, params: Record<string, unknown>, key: string | undefined, id = 1): Promise<Reply> {
  return target.mcp({ jsonrpc: '2.0', id, method, params }, key === undefined ? {} : { key });
}

function rpc(method: string, params: Record<string, unknown>, key: string | undefined, id = 1): Promise<Reply> {
  return rpcOn(gate, method, params, key, id);
}

async function startResearch(target: GateProcess, key: string): Promise<string> {
  const created = await rpcOn(target, 'tools/call', { name: 'simulate-research-query', arguments: { topic: 'tenancy' }, task: { ttl: 60_000 } }, key);
  const taskId = created.json.result?.task?.taskId;
  assert.equal(typeof taskId, 'string', created.text);
  return taskId;
}

/** Two keys on one server-everything behind `target`: the one without credits gets nothing of the other's tasks. */
async function tasksStayTheOwners(target: GateProcess): Promise<void> {
  const owner = (await target.createKey({ credits: 100 })).key;
  const thief = (await target.createKey({ credits: 0 })).key;
  const taskId = await startResearch(target, owner);
  assert.equal(await target.balance(owner), 95);

  const listed = await rpcOn(target, 'tasks/list', {}, thief);
  assert.deepEqual(listed.json.result.tasks, []);
  for (const method of ['tasks/get', 'tasks/result', 'tasks/cancel']) {
    const unknown = await rpcOn(target, method, { taskId: 'no-such-task' }, thief);
    const refused = await rpcOn(target, method, { taskId }, thief);
    assert.equal(refused.json.error?.code, -32602, `${method}: ${refused.text}`);
    // Answered exactly as for a task that does not exist: nothing tells the thief the id is real.
    assert.equal(refused.json.error.message.replace(taskId, 'no-such-task'), unknown.json.error.message, method);
  }
  assert.equal((await rpcOn(target, 'tasks/list', {}, undefined)).status, 401);

  assert.deepEqual((await rpcOn(target, 'tasks/list', {}, owner)).json.result.tasks.map((task: { taskId: string }) => task.taskId), [taskId]);
  assert.equal((await rpcOn(target, 'tasks/get', { taskId }, owner)).json.result.taskId, taskId);
  const result = await rpcOn(target, 'tasks/result', { taskId }, owner);
  assert.match(textOf(result), /Research Report: tenancy/);
  assert.equal(await target.balance(owner), 95, 'tasks/result is not a second charge');
  assert.equal((await rpcOn(target, 'tasks/result', { taskId }, thief)).json.error?.code, -32602, 'a finished task stays the owner\'s');

  const second = await startResearch(target, owner);
  assert.equal((await rpcOn(target, 'tasks/cancel', { taskId: second }, thief)).json.error?.code, -32602);
  assert.equal((await rpcOn(target, 'tasks/get', { taskId: second }, owner)).json.result.status, 'working');
  assert.equal((await rpcOn(target, 'tasks/cancel', { taskId: second }, owner)).json.result.status, 'cancelled');
}

test('server-everything tasks: a 0-credit key cannot list, get, read or cancel another key\'s task; the owner can, and its result is not charged again', () =>
  tasksStayTheOwners(gate),
);

test('the same holds with isolation "key", where each key has a server-everything of its own', async () => {
  const isolated = (await startGate({ ...EVERYTHING_CONFIG, isolation: 'key' })).gate;
  await tasksStayTheOwners(isolated);
});

test('sessions are bound to the key that opened them: another key, no key, or a key on a keyless session is refused as unknown (POST, GET, DELETE)', async () => {
  const { key } = await gate.createKey();
  const other = (await gate.createKey()).key;
  const keyed = await openSession(gate, key);
  const keyless = await openSession(gate, undefined);
  const ping = { jsonrpc: '2.0', id: 9, method: 'ping' };
  const as = (session: Record<string, string>, who: string | undefined): Record<string, string> => {
    const headers = { ...session };
    delete headers['x-api-key'];
    return who === undefined ? headers : { ...headers, 'x-api-key': who };
  };
  const unknownSession = await gate.mcp(ping, { headers: { ...keyed, 'mcp-session-id': 'no-such-session' } });
  assert.equal(unknownSession.status, 404);
  for (const headers of [as(keyed, other), as(keyed, undefined), as(keyless, key)]) {
    const post = await gate.mcp(ping, { headers });
    assert.equal(post.status, 404, post.text);
    assert.equal(post.json.error.message, unknownSession.json.error.message);
    const stream = await liveStream(gate, 'GET', headers);
    assert.equal(stream.status, 404);
    assert.equal((await gate.request('DELETE', '/mcp', { headers })).status, 404);
  }
  assert.equal((await gate.mcp(ping, { headers: keyed })).status, 200, 'the refusals did not end the session');
  assert.equal((await gate.mcp(ping, { headers: keyless })).status, 200);
  assert.equal((await gate.request('DELETE', '/mcp', { headers: keyed })).status, 204);
});

test('each session gets the log messages at or above its own level; the server is asked for the most verbose one', async () => {
  const verbose = await openSession(gate, (await gate.createKey()).key);
  const quiet = await openSession(gate, (await gate.createKey()).key);
  assert.deepEqual((await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'logging/setLevel', params: { level: 'info' } }, { headers: verbose })).json.result, {});
  assert.deepEqual((await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'logging/setLevel', params: { level: 'warning' } }, { headers: quiet })).json.result, {});
  const bad = await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'logging/setLevel', params: { level: 'loud' } }, { headers: quiet });
  assert.match(bad.json.error.message, /params.level must be one of debug, info/);
  // server-everything logs each subscription at level info, to the client that subscribed.
  const logsOf = async (headers: Record<string, string>, uri: string) =>
    messagesOf(await gate.mcp({ jsonrpc: '2.0', id: 2, method: 'resources/subscribe', params: { uri } }, { headers })).filter((message) => message.method === 'notifications/message');
  assert.deepEqual(await logsOf(quiet, 'demo://tenants/quiet'), []);
  const logs = await logsOf(verbose, 'demo://tenants/verbose');
  assert.equal(logs.length, 1);
  assert.equal(logs[0]!.params.level, 'info');
  assert.match(String(logs[0]!.params.data), /demo:\/\/tenants\/verbose/);
});

test('resource updates go only to the sessions subscribed to that resource; a request without a session cannot subscribe', async () => {
  const { key } = await gate.createKey();
  const [first, second, bystander] = [await openSession(gate, key), await openSession(gate, key), await openSession(gate, key)];
  const stateless = await rpc('resources/subscribe', { uri: 'demo://tenants/x' }, key);
  assert.equal(stateless.json.error?.code, -32600);
  assert.match(stateless.json.error.message, /needs an MCP session/);
  await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'demo://updates/first' } }, { headers: first });
  await gate.mcp({ jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'demo://updates/second' } }, { headers: second });
  const streams = await Promise.all([first, second, bystander].map((headers) => liveStream(gate, 'GET', headers)));
  const updated = (stream: LiveStream) => stream.messages.filter((message) => message.method === 'notifications/resources/updated').map((message) => message.params.uri);
  // Sends an update for every subscribed resource at once, then every 5 s until toggled off.
  await gate.callTool(key, 'toggle-subscriber-updates');
  await waitFor('both updates', async () => (updated(streams[0]!).length > 0 && updated(streams[1]!).length > 0 ? true : undefined));
  await gate.callTool(key, 'toggle-subscriber-updates');
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual([...new Set(updated(streams[0]!))], ['demo://updates/first']);
  assert.deepEqual([...new Set(updated(streams[1]!))], ['demo://updates/second']);
  assert.deepEqual(updated(streams[2]!), []);
});

test('a sampling request goes only to the client whose call caused it; one the gate cannot attribute is refused to the server', async () => {
  const caller = await openSession(gate, (await gate.createKey()).key, { sampling: {} });
  const bystander = await openSession(gate, (await gate.createKey()).key, { sampling: {} });
  const watching = await liveStream(gate, 'GET', bystander);
  const call = await liveStream(gate, 'POST', caller, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'trigger-sampling-request', arguments: { prompt: 'hi' } } });
  const request = await waitFor('the sampling request', async () => call.messages.find((message) => message.method === 'sampling/createMessage'));

  // While the caller's call waits, another client's call asks for sampling too: with two clients in flight it is refused.
  const concurrent = await gate.mcp({ jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'trigger-sampling-request', arguments: { prompt: 'mine?' } } }, { headers: bystander });
  assert.equal(concurrent.json.result.isError, true);
  assert.match(textOf(concurrent), /cannot relay sampling\/createMessage/);
  assert.ok(!messagesOf(concurrent).some((message) => message.method === 'sampling/createMessage'));

  const answer = { jsonrpc: '2.0', id: request.id, result: { role: 'assistant', content: { type: 'text', text: 'from the caller' }, model: 'm' } };
  assert.equal((await gate.mcp(answer, { headers: bystander })).status, 403, 'nobody else may answer it');
  assert.equal((await gate.mcp(answer, { headers: caller })).status, 202);
  await call.ended;
  assert.match(String(call.messages.at(-1)?.result?.content?.[0]?.text), /from the caller/);
  assert.equal(call.messages.filter((message) => message.method === 'sampling/createMessage').length, 1);
  assert.ok(!watching.messages.some((message) => message.method === 'sampling/createMessage'));
});
