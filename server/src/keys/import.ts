import type { KeyRecord } from '../gate/types.ts';
import type { Ledger } from '../store/contract.ts';
import { ajv, explain } from '../validation/ajv.ts';
import { displayPrefix, hashApiKey } from './apiKey.ts';
import { keyFieldProperties, newKeyRecord, type KeyFields } from './fields.ts';

/**
 * One key to import: a paygate-mcp 2.x state-file record, or a line of a JSON-lines file with the
 * same fields. The plain key is hashed on the way in and never stored.
 */
interface ImportRecord extends Omit<KeyFields, 'expiresIn'> {
  key: string;
  active?: boolean;
  totalSpent?: number;
  totalCalls?: number;
  createdAt?: string;
  lastUsedAt?: string | null;
  quotaDailyCalls?: number;
  quotaMonthlyCalls?: number;
  quotaDailyCredits?: number;
  quotaMonthlyCredits?: number;
  quotaLastResetDay?: string;
  quotaLastResetMonth?: string;
}

const count = keyFieldProperties.credits;
const { expiresIn: _expiresIn, ...importableFields } = keyFieldProperties;

const KNOWN_FIELDS = new Set([
  'key', ...Object.keys(importableFields), 'active', 'totalSpent', 'totalCalls', 'createdAt', 'lastUsedAt',
  'quotaDailyCalls', 'quotaMonthlyCalls', 'quotaDailyCredits', 'quotaMonthlyCredits', 'quotaLastResetDay',
  'quotaLastResetMonth',
]);

const validateRecord = ajv.compile<ImportRecord>({
  type: 'object',
  required: ['key'],
  properties: {
    ...importableFields,
    key: { type: 'string', minLength: 8, maxLength: 512 },
    active: { type: 'boolean' },
    totalSpent: count,
    totalCalls: count,
    createdAt: { type: 'string', format: 'date-time', errorMessage: 'must be an ISO 8601 date and time' },
    lastUsedAt: { type: ['string', 'null'], format: 'date-time', errorMessage: 'must be an ISO 8601 date and time, or null' },
    quotaDailyCalls: count,
    quotaMonthlyCalls: count,
    quotaDailyCredits: count,
    quotaMonthlyCredits: count,
    quotaLastResetDay: { type: 'string', format: 'date', errorMessage: 'must be a date such as 2026-11-25' },
    quotaLastResetMonth: { type: 'string', pattern: '^\\d{4}-(0[1-9]|1[0-2])$', errorMessage: 'must be a month such as 2026-11' },
  },
});

export interface ImportedKey {
  key: string;
  record: Omit<KeyRecord, 'id'>;
}

export interface ParsedImport {
  keys: ImportedKey[];
  /** Fields present in the input that PayGate does not use (from later paygate-mcp versions). */
  ignoredFields: string[];
  errors: string[];
}

function toImported(input: ImportRecord, now: number): ImportedKey {
  const record = newKeyRecord(input, hashApiKey(input.key), displayPrefix(input.key), now);
  const createdAt = input.createdAt === undefined ? now : Date.parse(input.createdAt);
  record.createdAt = createdAt;
  record.active = input.active ?? true;
  record.totalSpent = input.totalSpent ?? 0;
  record.totalCalls = input.totalCalls ?? 0;
  record.lastUsedAt = input.lastUsedAt ? Date.parse(input.lastUsedAt) : null;
  record.usage = {
    day: input.quotaLastResetDay ?? record.usage.day,
    month: input.quotaLastResetMonth ?? record.usage.month,
    dailyCalls: input.quotaDailyCalls ?? 0,
    dailyCredits: input.quotaDailyCredits ?? 0,
    monthlyCalls: input.quotaMonthlyCalls ?? 0,
    monthlyCredits: input.quotaMonthlyCredits ?? 0,
  };
  return { key: input.key, record };
}

/** The entries of the input, each with a label for error messages. */
function entriesOf(text: string): { label: string; value: unknown }[] | string {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      return `the file starts like a JSON array but is not valid JSON: ${(error as Error).message}`;
    }
    return (parsed as unknown[]).map((item, index) => ({
      label: `entry ${index + 1}`,
      // A paygate-mcp 2.x state file is the entries of a Map: [key, record] pairs.
      value: Array.isArray(item) && item.length === 2 && typeof item[0] === 'string' ? { key: item[0], ...(item[1] as object) } : item,
    }));
  }
  const entries: { label: string; value: unknown }[] = [];
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.trim();
    if (line === '') continue;
    try {
      entries.push({ label: `line ${index + 1}`, value: JSON.parse(line) });
    } catch {
      entries.push({ label: `line ${index + 1}`, value: Symbol('not JSON') });
    }
  }
  return entries;
}

/**
 * Reads keys to import from a paygate-mcp 2.x state file (a JSON array of `[key, record]` pairs),
 * a JSON array of records, or JSON lines (one record per line). Every record needs `key`.
 */
export function parseKeyImport(text: string, now: number): ParsedImport {
  const entries = entriesOf(text);
  if (typeof entries === 'string') return { keys: [], ignoredFields: [], errors: [entries] };
  const keys: ImportedKey[] = [];
  const errors: string[] = [];
  const ignored = new Set<string>();
  const seen = new Set<string>();
  for (const { label, value } of entries) {
    if (typeof value === 'symbol') {
      errors.push(`${label}: not valid JSON`);
      continue;
    }
    if (!validateRecord(value)) {
      errors.push(...explain(validateRecord.errors, label));
      continue;
    }
    if (seen.has(value.key)) {
      errors.push(`${label}: the same key appears twice`);
      continue;
    }
    seen.add(value.key);
    for (const field of Object.keys(value)) if (!KNOWN_FIELDS.has(field)) ignored.add(field);
    keys.push(toImported(value, now));
  }
  return { keys, ignoredFields: [...ignored].sort(), errors };
}

export interface ImportOutcome {
  imported: number;
  /** Keys already in the store: left exactly as they are. */
  skipped: number;
}

/** Adds the keys that are not stored yet, all in one transaction. Existing keys are never changed. */
export async function importKeys(ledger: Ledger, keys: readonly ImportedKey[]): Promise<ImportOutcome> {
  const imported = await ledger.insertMissing(keys.map((key) => key.record));
  return { imported, skipped: keys.length - imported };
}
