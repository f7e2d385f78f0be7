import type { KeyUsage, NamespaceUsage, PoolUsage, ProcessUsage, ServerUsage, ToolUsage, UsageSnapshot } from '../../server/src/lsp/protocol.ts';
import { plural } from './words.ts';

/** One row of the usage panel, independent of the VS Code API so that it can be tested as data. */
export interface PanelNode {
  /** Stable across refreshes, so that expanded rows stay expanded. */
  id: string;
  label: string;
  description?: string;
  /** Markdown. */
  tooltip?: string;
  /** A codicon name. */
  icon: string;
  /** Decides the context menu: `key.active` rows can be topped up and revoked. */
  contextValue?: string;
  /** Present on rows that can be expanded; expanded at first unless `collapsed`. */
  children?: PanelNode[];
  collapsed?: boolean;
  /** For key rows: the key the context menu acts on. */
  key?: KeyUsage;
}

function priceText(tool: ToolUsage): string {
  return tool.creditsPerKbInput > 0 ? `${tool.creditsPerCall} cr + ${tool.creditsPerKbInput}/KiB` : `${tool.creditsPerCall} cr`;
}

function toolNode(tool: ToolUsage): PanelNode {
  const lines = [
    `**${tool.name}**${tool.description ? ` — ${tool.description}` : ''}`,
    '',
    `Price: ${tool.creditsPerCall} credits per call${tool.creditsPerKbInput > 0 ? `, plus ${tool.creditsPerKbInput} per KiB of arguments` : ''}`,
    `Rate limit: ${tool.rateLimitPerMin === 0 ? 'none' : `${tool.rateLimitPerMin} calls per minute per key`}`,
    `Paid calls: ${tool.calls}, credits earned: ${tool.creditsEarned}, refused: ${tool.denied}`,
  ];
  return {
    id: `tool:${tool.name}`,
    label: tool.name,
    description: `${priceText(tool)} · ${plural(tool.calls, 'call')} · ${tool.creditsEarned} earned`,
    tooltip: lines.join('  \n'),
    icon: 'tools',
    contextValue: 'tool',
  };
}

function processNode(server: string, process: ProcessUsage, index: number): PanelNode {
  const whose = process.kind === 'catalog' ? 'lists for clients without a key' : process.kind === 'session' ? `a session of ${process.key}…` : `${process.key}…`;
  return {
    id: `process:${server}:${index}`,
    label: process.kind === 'catalog' ? '(lists)' : `${process.key}…`,
    description: `${process.kind === 'session' ? 'session · ' : ''}${process.up ? (process.calls > 0 ? plural(process.calls, 'call') + ' in flight' : 'idle') : 'starting or down'}`,
    tooltip: `The server's process for ${whose}`,
    icon: process.up ? 'vm-running' : 'vm-outline',
  };
}

function processesNode(server: string, pool: PoolUsage): PanelNode {
  const tenants = pool.processes.filter((process) => process.kind !== 'catalog').length;
  const per = pool.isolation === 'key' ? 'API key' : 'session';
  return {
    id: `processes:${server}`,
    label: 'Processes',
    description: `${tenants} of ${pool.maxProcesses}${pool.queued > 0 ? ` · ${pool.queued} queued` : ''}`,
    tooltip: `One process per ${per} (isolation: ${pool.isolation}), at most ${pool.maxProcesses}; idle ones stop after a while.${pool.queued > 0 ? `  \n${plural(pool.queued, 'call')} waiting for a process: all are busy.` : ''}`,
    icon: 'vm',
    collapsed: true,
    children: pool.processes.map((process, index) => processNode(server, process, index)),
  };
}

function serverNode(server: ServerUsage): PanelNode {
  const earned = server.tools.reduce((sum, tool) => sum + tool.creditsEarned, 0);
  const tools = server.tools.map(toolNode);
  return {
    id: `server:${server.name}`,
    label: server.name,
    description: `${server.up ? 'up' : 'down'} · ${plural(server.tools.length, 'tool')} · ${earned} earned`,
    icon: server.up ? 'server-process' : 'warning',
    contextValue: 'server',
    children: server.processes ? [processesNode(server.name, server.processes), ...tools] : tools,
  };
}

function lastUsed(at: string | null): string {
  return at === null ? 'never' : at.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

function keyNode(key: KeyUsage): PanelNode {
  const quota = key.quota.map((use) => `${use.what}: ${use.used} of ${use.limit}`);
  const lines = [
    `**${key.name}** \`${key.keyPrefix}…\`${key.active ? '' : ' (revoked)'}`,
    '',
    `Credits left: ${key.credits}, spent: ${key.spent}, calls: ${key.calls}`,
    `Quota: ${quota.length ? quota.join('; ') : 'none'}`,
    `Last used: ${lastUsed(key.lastUsedAt)}`,
  ];
  const tightest = key.quota.map((use) => use.used / use.limit).reduce((max, share) => Math.max(max, share), 0);
  return {
    id: `key:${key.id}`,
    label: key.name || key.keyPrefix,
    description: key.active
      ? `${key.credits} left · ${key.spent} spent${key.quota.length ? ` · quota ${Math.round(tightest * 100)}%` : ''}`
      : 'revoked',
    tooltip: lines.join('  \n'),
    icon: key.active ? 'key' : 'circle-slash',
    contextValue: key.active ? 'key.active' : 'key.revoked',
    key,
  };
}

function namespaceNode(namespace: NamespaceUsage): PanelNode {
  const total = namespace.keys.length + namespace.more;
  const children = namespace.keys.map(keyNode);
  if (namespace.more > 0) {
    children.push({ id: `more:${namespace.namespace}`, label: `${plural(namespace.more, 'more key')} (GET /keys?namespace=${namespace.namespace})`, icon: 'ellipsis' });
  }
  return { id: `namespace:${namespace.namespace}`, label: namespace.namespace, description: plural(total, 'key'), icon: 'folder', children };
}

/**
 * The rows of the usage panel for a snapshot: servers with their tools, keys by namespace. Nothing
 * while no gate runs (the panel then shows its welcome), one row saying why when it failed.
 */
export function panelNodes(snapshot: UsageSnapshot): PanelNode[] {
  const { gate } = snapshot;
  if (gate.state === 'failed') return [{ id: 'failed', label: 'The gate could not start', description: gate.error, tooltip: gate.error, icon: 'error' }];
  if (gate.state === 'starting') return [{ id: 'starting', label: `Starting the gate for ${gate.label ?? 'the workspace'}…`, icon: 'loading~spin' }];
  if (gate.state !== 'running') return [];
  const nodes: PanelNode[] = [];
  if (gate.configProblems.length > 0) {
    nodes.push({
      id: 'refused',
      label: 'Config change refused',
      description: 'the previous config stays in force',
      tooltip: gate.configProblems.join('  \n'),
      icon: 'warning',
    });
  }
  const keyCount = snapshot.namespaces.reduce((sum, namespace) => sum + namespace.keys.length + namespace.more, 0);
  nodes.push(
    { id: 'servers', label: 'Servers', description: gate.url, icon: 'server-environment', children: snapshot.servers.map(serverNode) },
    { id: 'keys', label: 'Keys', description: plural(keyCount, 'key'), icon: 'key', children: snapshot.namespaces.map(namespaceNode) },
  );
  return nodes;
}

/** The status bar item: gate state, port and calls per minute. */
export function statusBarView(snapshot: UsageSnapshot): { text: string; tooltip: string; severity: 'normal' | 'warning' | 'error' } {
  const { gate } = snapshot;
  switch (gate.state) {
    case 'stopped':
      return { text: '$(circle-slash) PayGate', tooltip: 'No gate is running. Click to open the usage panel.', severity: 'normal' };
    case 'starting':
      return { text: '$(loading~spin) PayGate', tooltip: `Starting the gate for ${gate.label ?? 'the workspace'}`, severity: 'normal' };
    case 'failed':
      return { text: '$(error) PayGate', tooltip: `The gate could not start: ${gate.error ?? 'unknown reason'}`, severity: 'error' };
    case 'running': {
      const down = gate.backends.filter((backend) => !backend.up);
      const problems = [...down.map((backend) => `${backend.name} is down${backend.detail ? `: ${backend.detail}` : ''}`), ...gate.configProblems];
      return {
        text: `$(shield) PayGate :${gate.port} · ${snapshot.callsPerMinute}/min`,
        tooltip: [`Gating ${gate.label} at ${gate.url}`, `${snapshot.callsPerMinute} paid calls in the last minute`, ...problems].join('\n'),
        severity: problems.length > 0 ? 'warning' : 'normal',
      };
    }
  }
}
