import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  CallBatch,
  CreateKey,
  RevokeKey,
  StartServer,
  Status,
  StopServer,
  Tools,
  TopUp,
  type KeyUsage,
  type StartServerParams,
  type UsageSnapshot,
} from '../../server/src/lsp/protocol.ts';
import { ADMIN_KEY, ROOT } from '../helpers/gate.ts';
import { DaemonClient } from '../helpers/lsp.ts';
import { tempDir } from '../helpers/tmp.ts';

const EXAMPLE_SERVER = path.join(ROOT, 'dist', 'example-server.js');
const daemon = await DaemonClient.start();
const dir = tempDir();
const configFile = path.join(dir, 'paygate.json');
fs.writeFileSync(
  configFile,
  JSON.stringify({
    serverCommand: process.execPath,
    serverArgs: [EXAMPLE_SERVER],
    toolPricing: { search_docs: { creditsPerCall: 2 }, weather: { creditsPerCall: 3 } },
    refundOnFailure: true,
  }),
);

function startParams(overrides: Partial<StartServerParams> = {}): StartServerParams {
  return {
    source: { kind: 'config', file: configFile },
    baseDir: dir,
    defaults: { host: '127.0.0.1', port: 0, stateFile: '.paygate/state.db' },
    adminKey: ADMIN_KEY,
    devKey: undefined,
    ...overrides,
  };
}

async function callTool(url: string, apiKey: string, name: string, args: object = {}): Promise<{ status: number; body: { result?: { isError?: boolean }; error?: { message: string } } }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }),
  });
  return { status: response.status, body: (await response.json()) as { result?: { isError?: boolean }; error?: { message: string } } };
}

const keyNamed = (snapshot: UsageSnapshot, name: string): KeyUsage | undefined =>
  snapshot.namespaces.flatMap((namespace) => namespace.keys).find((key) => key.name === name);
const toolNamed = (snapshot: UsageSnapshot, name: string) => snapshot.servers.flatMap((server) => server.tools).find((tool) => tool.name === name);

test('the daemon starts a gate from a config, with a dev key, its state in the workspace, and /health up', async () => {
  const since = daemon.snapshots.length;
  const { status, devKey } = await daemon.connection.sendRequest(StartServer, startParams());
  assert.equal(status.state, 'running');
  assert.match(status.url!, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  assert.equal(status.stateFile, path.join(dir, '.paygate', 'state.db'));
  assert.ok(fs.existsSync(status.stateFile!));
  assert.equal((await fetch(status.url!.replace(/\/mcp$/, '/health'))).status, 200);

  const snapshot = await daemon.usage((s) => s.gate.state === 'running' && keyNamed(s, 'vscode-dev') !== undefined, since);
  assert.deepEqual(
    snapshot.servers[0]!.tools.map((tool) => [tool.name, tool.creditsPerCall]),
    [['echo', 1], ['fail', 1], ['search_docs', 2], ['slow', 1], ['summarize', 1], ['weather', 3]],
  );
  assert.equal(keyNamed(snapshot, 'vscode-dev')!.credits, 1000);

  const answer = await callTool(status.url!, devKey, 'search_docs', { query: 'pricing' });
  assert.equal(answer.status, 200);
  const after = await daemon.usage((s) => toolNamed(s, 'search_docs')?.calls === 1);
  assert.equal(toolNamed(after, 'search_docs')!.creditsEarned, 2);
  assert.equal(keyNamed(after, 'vscode-dev')!.credits, 998);
  assert.equal(keyNamed(after, 'vscode-dev')!.spent, 2);
  assert.ok(after.callsPerMinute >= 1);
});

test('keys made from the editor work at once; top-ups and revocations show in the panel', async () => {
  const { gate } = await daemon.connection.sendRequest(Status);
  const created = await daemon.connection.sendRequest(CreateKey, { name: 'customer', credits: 5, namespace: 'acme' });
  assert.match(created.key, /^pg_[0-9a-f]{48}$/);
  const listed = await daemon.usage((s) => s.namespaces.some((n) => n.namespace === 'acme' && n.keys.some((k) => k.id === created.id)), 0);
  assert.equal(keyNamed(listed, 'customer')!.credits, 5);

  assert.equal((await callTool(gate.url!, created.key, 'weather', { city: 'Oslo' })).status, 200);
  assert.deepEqual(await daemon.connection.sendRequest(TopUp, { id: created.id, credits: 10 }), { credits: 12 });
  await daemon.usage((s) => keyNamed(s, 'customer')?.credits === 12, 0);

  await daemon.connection.sendRequest(RevokeKey, { id: created.id });
  await daemon.usage((s) => keyNamed(s, 'customer')?.active === false, 0);
  assert.equal((await callTool(gate.url!, created.key, 'echo', { text: 'hi' })).status, 401);
  await assert.rejects(daemon.connection.sendRequest(TopUp, { id: created.id, credits: 1 }), /revoked/);
});

test('a batch runs through the gate: each item with its result and credits, or nothing when one is refused', async () => {
  const created = await daemon.connection.sendRequest(CreateKey, { name: 'batcher', credits: 4 });
  const ran = await daemon.connection.sendRequest(CallBatch, {
    apiKey: created.key,
    calls: [{ name: 'echo', arguments: { text: 'one' } }, { name: 'search_docs', arguments: { query: 'two' } }],
  });
  assert.equal(ran.ok, true);
  assert.ok(ran.ok);
  assert.deepEqual(ran.results.map((item) => [item.tool, item.creditsCharged]), [['echo', 1], ['search_docs', 2]]);
  assert.equal(ran.totalCreditsCharged, 3);
  assert.equal(ran.remainingCredits, 1);

  const refused = await daemon.connection.sendRequest(CallBatch, { apiKey: created.key, calls: [{ name: 'weather', arguments: { city: 'Rome' } }] });
  assert.equal(refused.ok, false);
  assert.ok(!refused.ok);
  assert.match(refused.message, /call 0 \(weather\) was refused/);
  const tools = await daemon.connection.sendRequest(Tools);
  assert.deepEqual(tools.find((tool) => tool.name === 'weather')?.creditsPerCall, 3);
  assert.equal(tools.find((tool) => tool.name === 'echo')?.inputSchema?.type, 'object');
});

test('keys imported through the admin API show in the panel at once', async () => {
  const { gate } = await daemon.connection.sendRequest(Status);
  const since = daemon.snapshots.length;
  const response = await fetch(gate.url!.replace(/\/mcp$/, '/keys/import'), {
    method: 'POST',
    headers: { 'x-admin-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' },
    body: `${JSON.stringify({ key: `pg_${'cd'.repeat(24)}`, name: 'imported', credits: 40 })}\n`,
  });
  assert.deepEqual(((await response.json()) as { imported: number }).imported, 1);
  const shown = await daemon.usage((s) => keyNamed(s, 'imported') !== undefined, since);
  assert.equal(keyNamed(shown, 'imported')!.credits, 40);
});

test('a changed config applies to the daemon\'s gate, and a broken one is refused with its reason', async () => {
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as { toolPricing: Record<string, { creditsPerCall: number }> };
  config.toolPricing.echo = { creditsPerCall: 7 };
  fs.writeFileSync(configFile, JSON.stringify(config));
  await daemon.usage((s) => toolNamed(s, 'echo')?.creditsPerCall === 7, 0);

  fs.writeFileSync(configFile, JSON.stringify({ ...config, defaultCreditsPerCall: 'lots' }));
  const refused = await daemon.usage((s) => s.gate.configProblems.length > 0, 0);
  assert.match(refused.gate.configProblems.join('\n'), /defaultCreditsPerCall/);
  assert.equal(toolNamed(refused, 'echo')!.creditsPerCall, 7);
  fs.writeFileSync(configFile, JSON.stringify(config));
  await daemon.usage((s) => s.gate.configProblems.length === 0, daemon.snapshots.length - 1);
});

test('workspace servers without a config are gated together under their names; the dev key given is kept', async () => {
  const devKey = `pg_${'ab'.repeat(24)}`;
  const { status, devKey: kept } = await daemon.connection.sendRequest(
    StartServer,
    startParams({
      devKey,
      source: {
        kind: 'servers',
        label: '.vscode/mcp.json',
        servers: ['docs', 'demo'].map((name) => ({ name, command: process.execPath, args: [EXAMPLE_SERVER], env: {} })),
      },
    }),
  );
  assert.equal(kept, devKey);
  const snapshot = await daemon.usage((s) => s.gate.url === status.url && s.servers.length === 2, 0);
  assert.deepEqual(snapshot.servers.map((server) => [server.name, server.up, server.tools.length]), [['docs', true, 6], ['demo', true, 6]]);
  assert.equal((await callTool(status.url!, devKey, 'demo:echo', { text: 'hi' })).status, 200);
  await daemon.usage((s) => toolNamed(s, 'demo:echo')?.calls === 1, 0);
});

test('a gate that cannot start says why; stopping frees the port', async () => {
  const running = await daemon.connection.sendRequest(Status);
  const stopped = await daemon.connection.sendRequest(StopServer);
  assert.equal(stopped.state, 'stopped');
  await assert.rejects(fetch(running.gate.url!));

  await assert.rejects(
    daemon.connection.sendRequest(StartServer, startParams({ source: { kind: 'servers', label: 'typo', servers: [{ name: 'x', command: 'no-such-command-paygate', args: [], env: {} }] } })),
    /no-such-command-paygate/,
  );
  const failed = await daemon.connection.sendRequest(Status);
  assert.equal(failed.gate.state, 'failed');
  assert.match(failed.gate.error!, /no-such-command-paygate/);
});

test('two starts asked at once leave one gate running: the later one', async () => {
  const [first, second] = await Promise.all([daemon.connection.sendRequest(StartServer, startParams()), daemon.connection.sendRequest(StartServer, startParams())]);
  assert.notEqual(first.status.url, second.status.url);
  assert.equal((await daemon.connection.sendRequest(Status)).gate.url, second.status.url);
  await assert.rejects(fetch(first.status.url!));
  assert.equal((await fetch(second.status.url!.replace(/\/mcp$/, '/health'))).status, 200);
  await daemon.connection.sendRequest(StopServer);
});
