import { currentUsage } from '../gate/quota.ts';
import { toolPricing } from '../gate/pricing.ts';
import type { KeyRecord, Policy, QuotaLimits } from '../gate/types.ts';
import { PREFIX_SEPARATOR } from '../proxy/router.ts';
import type { ListedTool } from '../proxy/listTools.ts';
import type { ToolStats } from '../store/types.ts';
import type { PoolView } from '../proxy/pool.ts';
import type { GateStatus, KeyUsage, NamespaceUsage, PoolUsage, QuotaUse, ServerUsage, ToolUsage, UsageSnapshot } from './protocol.ts';

/** A gated server as the panel groups tools under it: by its prefix, or all tools when it has none. */
export interface GatedServer {
  name: string;
  prefix: string | undefined;
  up: boolean;
  /** Its processes, when it runs one per key or session. */
  pool?: PoolView;
}

export interface UsageInput {
  gate: GateStatus;
  callsPerMinute: number;
  servers: readonly GatedServer[];
  tools: readonly ListedTool[];
  stats: ReadonlyMap<string, ToolStats>;
  policy: Policy;
  /** Per namespace, the keys to show and how many there are in all. */
  namespaces: readonly { namespace: string; keys: readonly KeyRecord[]; keyCount: number }[];
  now: number;
}

const NO_STATS: ToolStats = { calls: 0, credits: 0, denied: 0 };

function toolUsage(tool: ListedTool, stats: ReadonlyMap<string, ToolStats>, policy: Policy): ToolUsage {
  const used = stats.get(tool.name) ?? NO_STATS;
  return {
    name: tool.name,
    description: tool.description,
    ...toolPricing(policy, tool.name),
    calls: used.calls,
    creditsEarned: used.credits,
    denied: used.denied,
  };
}

function quotaUse(limits: QuotaLimits | null, record: KeyRecord, now: number): QuotaUse[] {
  if (!limits) return [];
  const usage = currentUsage(record.usage, now);
  const all: QuotaUse[] = [
    { what: 'daily calls', used: usage.dailyCalls, limit: limits.dailyCallLimit },
    { what: 'monthly calls', used: usage.monthlyCalls, limit: limits.monthlyCallLimit },
    { what: 'daily credits', used: usage.dailyCredits, limit: limits.dailyCreditLimit },
    { what: 'monthly credits', used: usage.monthlyCredits, limit: limits.monthlyCreditLimit },
  ];
  return all.filter((quota) => quota.limit > 0);
}

function keyUsage(record: KeyRecord, policy: Policy, now: number): KeyUsage {
  return {
    id: record.id,
    keyPrefix: record.keyPrefix,
    name: record.name,
    namespace: record.namespace,
    active: record.active,
    credits: record.credits,
    spent: record.totalSpent,
    calls: record.totalCalls,
    lastUsedAt: record.lastUsedAt === null ? null : new Date(record.lastUsedAt).toISOString(),
    quota: quotaUse(record.quota ?? policy.globalQuota, record, now),
  };
}

/** Which server offers a tool: the one whose prefix it carries, or the only one. */
function serverOf(tool: string, servers: readonly GatedServer[]): GatedServer | undefined {
  if (servers.length === 1 && servers[0]!.prefix === undefined) return servers[0];
  const separator = tool.indexOf(PREFIX_SEPARATOR);
  return separator < 0 ? undefined : servers.find((server) => server.prefix === tool.slice(0, separator));
}

function poolUsage(pool: PoolView): PoolUsage {
  return {
    isolation: pool.isolation,
    maxProcesses: pool.maxProcesses,
    queued: pool.queued,
    processes: pool.processes.map((process) => ({ key: process.key, kind: process.kind, calls: process.calls, up: process.state === 'ready' })),
  };
}

/** What the usage panel shows: each server's tools with price and earnings, and each namespace's keys. */
export function usageSnapshot(input: UsageInput): UsageSnapshot {
  const servers: ServerUsage[] = input.servers.map((server) => ({
    name: server.name,
    up: server.up,
    tools: [],
    ...(server.pool ? { processes: poolUsage(server.pool) } : {}),
  }));
  for (const tool of input.tools) {
    const owner = serverOf(tool.name, input.servers);
    if (owner) servers[input.servers.indexOf(owner)]!.tools.push(toolUsage(tool, input.stats, input.policy));
  }
  for (const server of servers) server.tools.sort((a, b) => a.name.localeCompare(b.name));
  const namespaces: NamespaceUsage[] = input.namespaces.map(({ namespace, keys, keyCount }) => ({
    namespace,
    keys: keys.map((record) => keyUsage(record, input.policy, input.now)),
    more: Math.max(0, keyCount - keys.length),
  }));
  return { gate: input.gate, callsPerMinute: input.callsPerMinute, servers, namespaces };
}
