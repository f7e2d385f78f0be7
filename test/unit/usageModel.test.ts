import assert from 'node:assert/strict';
import { test } from 'node:test';
import { panelNodes, statusBarView, type PanelNode } from '../../client/src/usageModel.ts';
import { idleSnapshot, STOPPED, type UsageSnapshot } from '../../server/src/lsp/protocol.ts';

const running: UsageSnapshot = {
  gate: {
    ...STOPPED,
    state: 'running',
    label: 'docs',
    url: 'http://127.0.0.1:3402/mcp',
    port: 3402,
    backends: [{ name: 'docs (node)', up: true, detail: undefined }],
  },
  callsPerMinute: 12,
  servers: [
    {
      name: 'docs',
      up: true,
      tools: [{ name: 'docs:search', description: 'Search', creditsPerCall: 2, creditsPerKbInput: 1, rateLimitPerMin: 10, calls: 3, creditsEarned: 7, denied: 1 }],
    },
  ],
  namespaces: [
    {
      namespace: 'acme',
      more: 2,
      keys: [
        { id: 1, keyPrefix: 'pg_abcdef1', name: 'alice', namespace: 'acme', active: true, credits: 93, spent: 7, calls: 3, lastUsedAt: '2026-11-25T10:00:00.000Z', quota: [{ what: 'daily calls', used: 3, limit: 4 }] },
        { id: 2, keyPrefix: 'pg_0123456', name: 'bob', namespace: 'acme', active: false, credits: 0, spent: 0, calls: 0, lastUsedAt: null, quota: [] },
      ],
    },
  ],
};

function find(nodes: PanelNode[], id: string): PanelNode | undefined {
  for (const node of nodes) {
    if (node.id === id) return node;
    const inner = find(node.children ?? [], id);
    if (inner) return inner;
  }
  return undefined;
}

test('the panel is empty while no gate runs, so that its welcome shows; a failed start gets one row saying why', () => {
  assert.deepEqual(panelNodes(idleSnapshot()), []);
  const failed = panelNodes(idleSnapshot({ ...STOPPED, state: 'failed', error: 'port 3402 is already in use' }));
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.description, 'port 3402 is already in use');
});

test('tools show price, calls and credits earned under their server', () => {
  const nodes = panelNodes(running);
  assert.deepEqual(nodes.map((node) => node.label), ['Servers', 'Keys']);
  assert.equal(find(nodes, 'server:docs')!.description, 'up · 1 tool · 7 earned');
  const tool = find(nodes, 'tool:docs:search')!;
  assert.equal(tool.description, '2 cr + 1/KiB · 3 calls · 7 earned');
  assert.match(tool.tooltip!, /Rate limit: 10 calls per minute per key/);
  assert.match(tool.tooltip!, /refused: 1/);
});

test('keys are grouped by namespace with credits, spending, quota use and last use; revoked keys cannot be topped up', () => {
  const nodes = panelNodes(running);
  assert.equal(find(nodes, 'keys')!.description, '4 keys');
  assert.equal(find(nodes, 'namespace:acme')!.description, '4 keys');
  const alice = find(nodes, 'key:1')!;
  assert.equal(alice.description, '93 left · 7 spent · quota 75%');
  assert.equal(alice.contextValue, 'key.active');
  assert.match(alice.tooltip!, /daily calls: 3 of 4/);
  assert.match(alice.tooltip!, /Last used: 2026-11-25 10:00:00 UTC/);
  const bob = find(nodes, 'key:2')!;
  assert.equal(bob.contextValue, 'key.revoked');
  assert.equal(bob.description, 'revoked');
  assert.match(find(nodes, 'more:acme')!.label, /^2 more keys/);
});

test('a refused config change is the first row, so that it is not missed', () => {
  const nodes = panelNodes({ ...running, gate: { ...running.gate, configProblems: ['paygate.json:3:5 error invalid-value ...'] } });
  assert.equal(nodes[0]!.label, 'Config change refused');
  assert.match(nodes[0]!.tooltip!, /invalid-value/);
});

test('the status bar tells state, port and calls per minute, and warns when a backend is down', () => {
  assert.equal(statusBarView(running).text, '$(shield) PayGate :3402 · 12/min');
  assert.equal(statusBarView(running).severity, 'normal');
  const down = statusBarView({ ...running, gate: { ...running.gate, backends: [{ name: 'docs (node)', up: false, detail: 'restarting after exit code 1' }] } });
  assert.equal(down.severity, 'warning');
  assert.match(down.tooltip, /docs \(node\) is down: restarting after exit code 1/);
  assert.equal(statusBarView(idleSnapshot({ ...STOPPED, state: 'failed', error: 'boom' })).severity, 'error');
});

test('a server with a process per key shows its processes by key prefix, how many of the maximum run, and queued calls', () => {
  const processes = {
    isolation: 'key' as const,
    maxProcesses: 50,
    queued: 2,
    processes: [
      { key: null, kind: 'catalog' as const, calls: 0, up: true },
      { key: 'pg_abcdef1', kind: 'key' as const, calls: 3, up: true },
      { key: 'pg_0123456', kind: 'key' as const, calls: 0, up: true },
    ],
  };
  const nodes = panelNodes({ ...running, servers: [{ ...running.servers[0]!, processes }] });
  const group = find(nodes, 'processes:docs')!;
  assert.equal(group.description, '2 of 50 · 2 queued');
  assert.match(group.tooltip!, /One process per API key.*2 calls waiting for a process/s);
  assert.deepEqual(
    group.children!.map((row) => `${row.label} ${row.description}`),
    ['(lists) idle', 'pg_abcdef1… 3 calls in flight', 'pg_0123456… idle'],
  );
  assert.equal(find(nodes, 'server:docs')!.children![1]!.id, 'tool:docs:search', 'tools stay under the server, after its processes');
  assert.equal(find(panelNodes(running), 'processes:docs'), undefined, 'a shared server has no process rows');
});
