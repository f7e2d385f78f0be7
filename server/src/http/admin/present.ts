import { currentUsage } from '../../gate/quota.ts';
import type { KeyRecord } from '../../gate/types.ts';
import type { PoolReport } from '../../proxy/pool.ts';
import type { Ledger } from '../../store/contract.ts';
import type { UsageEvent } from '../../store/types.ts';

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** A key as the admin API shows it: everything but the secret, which is not stored. */
export function publicKey(record: KeyRecord, now: number) {
  const usage = currentUsage(record.usage, now);
  return {
    id: record.id,
    keyPrefix: `${record.keyPrefix}...`,
    name: record.name,
    namespace: record.namespace,
    credits: record.credits,
    totalSpent: record.totalSpent,
    totalCalls: record.totalCalls,
    createdAt: iso(record.createdAt),
    lastUsedAt: iso(record.lastUsedAt),
    active: record.active,
    expired: record.expiresAt !== null && record.expiresAt <= now,
    spendingLimit: record.spendingLimit,
    remainingBudget: record.spendingLimit > 0 ? Math.max(0, record.spendingLimit - record.totalSpent) : null,
    allowedTools: record.allowedTools,
    deniedTools: record.deniedTools,
    expiresAt: iso(record.expiresAt),
    tags: record.tags,
    ipAllowlist: record.ipAllowlist,
    quota: record.quota,
    quotaUsage: {
      dailyCalls: usage.dailyCalls,
      monthlyCalls: usage.monthlyCalls,
      dailyCredits: usage.dailyCredits,
      monthlyCredits: usage.monthlyCredits,
    },
  };
}

export function publicEvent(event: UsageEvent) {
  return {
    id: event.id,
    timestamp: new Date(event.at).toISOString(),
    apiKey: event.keyPrefix ? `${event.keyPrefix}...` : null,
    keyName: event.keyName,
    namespace: event.namespace,
    tool: event.tool,
    creditsCharged: event.credits,
    allowed: event.status !== 'denied',
    status: event.status,
    denyReason: event.reason,
  };
}

const CSV_COLUMNS = ['id', 'timestamp', 'apiKey', 'keyName', 'namespace', 'tool', 'creditsCharged', 'allowed', 'status', 'denyReason'] as const;

/** RFC 4180 quoting, and a leading quote on cells a spreadsheet would run as a formula. */
function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function usageCsv(events: readonly UsageEvent[], withHeader: boolean): string {
  const rows = events.map((event) => {
    const view = publicEvent(event);
    return CSV_COLUMNS.map((column) => csvCell(view[column])).join(',');
  });
  return (withHeader ? [CSV_COLUMNS.join(','), ...rows] : rows).map((row) => `${row}\r\n`).join('');
}

/** The display prefix (`pg_ab12`) of every key that has a process in these pools, by key hash. */
export async function poolKeyPrefixes(ledger: Ledger, pools: Iterable<PoolReport>): Promise<Map<string, string>> {
  const hashes = new Set<string>();
  for (const pool of pools) for (const { keyHash } of pool.processes) if (keyHash !== undefined) hashes.add(keyHash);
  const prefixes = new Map<string, string>();
  await Promise.all(
    [...hashes].map(async (hash) => {
      const record = await ledger.findByHash(hash);
      if (record) prefixes.set(hash, record.keyPrefix);
    }),
  );
  return prefixes;
}
