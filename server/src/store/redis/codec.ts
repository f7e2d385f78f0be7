import type { KeyRecord, QuotaLimits } from '../../gate/types.ts';
import type { EventStatus, UsageEvent } from '../types.ts';

/**
 * How records and events are written in Redis: every field as a string, `''` for null, lists and
 * maps (tools, tags, IP allowlist, quota) as JSON. The key HASH holds the KeyRecord fields by name,
 * the quota usage flattened (day, month, dailyCalls…), plus inflightCredits, inflightCalls and rev.
 */
export type Fields = Record<string, string>;

/** The balance fields admissions and settlements change, in the order the scripts return them. */
export const BALANCE_FIELDS = [
  'credits', 'totalSpent', 'totalCalls', 'lastUsedAt', 'day', 'month', 'dailyCalls', 'dailyCredits', 'monthlyCalls', 'monthlyCredits',
] as const;

const numberOrEmpty = (value: number | null): string => (value === null ? '' : String(value));

export function recordFields(record: Omit<KeyRecord, 'id'>): Fields {
  return {
    keyHash: record.keyHash,
    keyPrefix: record.keyPrefix,
    name: record.name,
    namespace: record.namespace,
    credits: String(record.credits),
    totalSpent: String(record.totalSpent),
    totalCalls: String(record.totalCalls),
    createdAt: String(record.createdAt),
    lastUsedAt: numberOrEmpty(record.lastUsedAt),
    active: record.active ? '1' : '0',
    spendingLimit: String(record.spendingLimit),
    allowedTools: JSON.stringify(record.allowedTools),
    deniedTools: JSON.stringify(record.deniedTools),
    expiresAt: numberOrEmpty(record.expiresAt),
    tags: JSON.stringify(record.tags),
    ipAllowlist: JSON.stringify(record.ipAllowlist),
    quota: record.quota === null ? '' : JSON.stringify(record.quota),
    day: record.usage.day,
    month: record.usage.month,
    dailyCalls: String(record.usage.dailyCalls),
    dailyCredits: String(record.usage.dailyCredits),
    monthlyCalls: String(record.usage.monthlyCalls),
    monthlyCredits: String(record.usage.monthlyCredits),
  };
}

const num = (value: string | undefined): number => (value === undefined || value === '' ? 0 : Number(value));
const numOrNull = (value: string | undefined): number | null => (value === undefined || value === '' ? null : Number(value));

function json<T>(value: string | undefined, fallback: T): T {
  return value === undefined || value === '' ? fallback : (JSON.parse(value) as T);
}

/** A key as stored, with its `rev` (incremented by every admin change). */
export interface StoredKey {
  record: KeyRecord;
  rev: string;
  inflightCredits: number;
  inflightCalls: number;
}

export function storedKey(id: number, fields: Fields): StoredKey {
  return {
    record: {
      id,
      keyHash: fields.keyHash ?? '',
      keyPrefix: fields.keyPrefix ?? '',
      name: fields.name ?? '',
      namespace: fields.namespace ?? 'default',
      credits: num(fields.credits),
      totalSpent: num(fields.totalSpent),
      totalCalls: num(fields.totalCalls),
      createdAt: num(fields.createdAt),
      lastUsedAt: numOrNull(fields.lastUsedAt),
      active: fields.active === '1',
      spendingLimit: num(fields.spendingLimit),
      allowedTools: json<string[]>(fields.allowedTools, []),
      deniedTools: json<string[]>(fields.deniedTools, []),
      expiresAt: numOrNull(fields.expiresAt),
      tags: json<Record<string, string>>(fields.tags, {}),
      ipAllowlist: json<string[]>(fields.ipAllowlist, []),
      quota: json<QuotaLimits | null>(fields.quota, null),
      usage: {
        day: fields.day ?? '',
        month: fields.month ?? '',
        dailyCalls: num(fields.dailyCalls),
        dailyCredits: num(fields.dailyCredits),
        monthlyCalls: num(fields.monthlyCalls),
        monthlyCredits: num(fields.monthlyCredits),
      },
    },
    rev: fields.rev ?? '0',
    inflightCredits: num(fields.inflightCredits),
    inflightCalls: num(fields.inflightCalls),
  };
}

/** A flat `[field, value, field, value…]` reply (HGETALL through a script, XRANGE entries) as an object. */
export function pairs(flat: readonly string[]): Fields {
  const fields: Fields = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}

/** Puts the balance fields a script returned (in `BALANCE_FIELDS` order) into `record`. */
export function applyBalance(record: KeyRecord, values: readonly string[]): void {
  const [credits, totalSpent, totalCalls, lastUsedAt, day, month, dailyCalls, dailyCredits, monthlyCalls, monthlyCredits] = values;
  record.credits = num(credits);
  record.totalSpent = num(totalSpent);
  record.totalCalls = num(totalCalls);
  record.lastUsedAt = numOrNull(lastUsedAt);
  record.usage = {
    day: day ?? '',
    month: month ?? '',
    dailyCalls: num(dailyCalls),
    dailyCredits: num(dailyCredits),
    monthlyCalls: num(monthlyCalls),
    monthlyCredits: num(monthlyCredits),
  };
}

/** A stream entry id `<n>-0` for event id n. */
export const entryId = (eventId: number): string => `${eventId}-0`;

export function eventFields(event: Omit<UsageEvent, 'id'>): string[] {
  const fields = [
    'at', String(event.at),
    'keyId', numberOrEmpty(event.keyId),
    'keyPrefix', event.keyPrefix,
    'keyName', event.keyName,
    'namespace', event.namespace,
    'tool', event.tool,
    'credits', String(event.credits),
    'status', event.status,
  ];
  if (event.reason !== null) fields.push('reason', event.reason);
  return fields;
}

export function usageEvent(entry: string, flat: readonly string[]): UsageEvent {
  const fields = pairs(flat);
  return {
    id: Number(entry.slice(0, entry.indexOf('-'))),
    at: num(fields.at),
    keyId: numOrNull(fields.keyId),
    keyPrefix: fields.keyPrefix ?? '',
    keyName: fields.keyName ?? '',
    namespace: fields.namespace ?? 'default',
    tool: fields.tool ?? '',
    credits: num(fields.credits),
    status: (fields.status ?? 'charged') as EventStatus,
    reason: fields.reason ?? null,
  };
}
