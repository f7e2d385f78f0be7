import { emptyUsage } from '../../server/src/gate/quota.ts';
import type { KeyRecord, Policy } from '../../server/src/gate/types.ts';

export const NOW = Date.parse('2026-11-25T12:00:00Z');

let nextId = 1;

export function keyRecord(overrides: Partial<KeyRecord> = {}): KeyRecord {
  const id = nextId++;
  return {
    id,
    keyHash: `hash-${id}`,
    keyPrefix: `pg_${id}`,
    name: `key ${id}`,
    namespace: 'default',
    credits: 100,
    totalSpent: 0,
    totalCalls: 0,
    createdAt: NOW,
    lastUsedAt: null,
    active: true,
    spendingLimit: 0,
    allowedTools: [],
    deniedTools: [],
    expiresAt: null,
    tags: {},
    ipAllowlist: [],
    quota: null,
    usage: emptyUsage(NOW),
    ...overrides,
  };
}

export function policy(overrides: Partial<Policy> = {}): Policy {
  return {
    defaultCreditsPerCall: 1,
    toolPricing: {},
    globalRateLimitPerMin: 0,
    globalQuota: null,
    shadowMode: false,
    ...overrides,
  };
}
