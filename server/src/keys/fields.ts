import { emptyUsage } from '../gate/quota.ts';
import { DEFAULT_NAMESPACE, NAMESPACE_PATTERN } from '../gate/namespace.ts';
import type { KeyRecord, QuotaLimits } from '../gate/types.ts';

/** The settings of a key that an admin may give when creating it (paygate-mcp's `POST /keys` body). */
export interface KeyFields {
  name?: string;
  credits?: number;
  allowedTools?: string[];
  deniedTools?: string[];
  /** Seconds from now; wins over `expiresAt`. */
  expiresIn?: number;
  expiresAt?: string | null;
  quota?: Partial<QuotaLimits> | null;
  tags?: Record<string, string>;
  ipAllowlist?: string[];
  namespace?: string;
  spendingLimit?: number;
}

const count = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
const toolList = { type: 'array', maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 200 } } as const;

export const quotaSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { dailyCallLimit: count, monthlyCallLimit: count, dailyCreditLimit: count, monthlyCreditLimit: count },
} as const;

/** JSON Schema properties of `KeyFields`, shared by `POST /keys` and bulk import. */
export const keyFieldProperties = {
  name: { type: 'string', maxLength: 200 },
  credits: count,
  allowedTools: toolList,
  deniedTools: toolList,
  expiresIn: { type: 'integer', minimum: 1, maximum: 100 * 365 * 24 * 3600 },
  expiresAt: {
    type: ['string', 'null'],
    format: 'date-time',
    errorMessage: 'must be an ISO 8601 date and time such as 2026-12-31T23:59:59Z, or null',
  },
  quota: { anyOf: [quotaSchema, { type: 'null' }] },
  tags: {
    type: 'object',
    maxProperties: 50,
    propertyNames: { maxLength: 100 },
    additionalProperties: { type: 'string', maxLength: 100 },
  },
  ipAllowlist: {
    type: 'array',
    maxItems: 100,
    items: { type: 'string', format: 'ip-rule', errorMessage: 'must be an IPv4 or IPv6 address or CIDR range such as 10.0.0.0/8' },
  },
  namespace: { type: 'string', pattern: NAMESPACE_PATTERN, errorMessage: 'must be letters, digits and hyphens, at most 50 characters' },
  spendingLimit: count,
} as const;

export function quotaLimits(quota: Partial<QuotaLimits> | null | undefined): QuotaLimits | null {
  if (!quota) return null;
  return {
    dailyCallLimit: quota.dailyCallLimit ?? 0,
    monthlyCallLimit: quota.monthlyCallLimit ?? 0,
    dailyCreditLimit: quota.dailyCreditLimit ?? 0,
    monthlyCreditLimit: quota.monthlyCreditLimit ?? 0,
  };
}

/** When a key given `expiresIn`/`expiresAt` expires; undefined when neither was given. */
export function expiryOf(fields: Pick<KeyFields, 'expiresIn' | 'expiresAt'>, now: number): number | null | undefined {
  if (fields.expiresIn !== undefined) return now + fields.expiresIn * 1000;
  if (fields.expiresAt === undefined) return undefined;
  return fields.expiresAt === null ? null : Date.parse(fields.expiresAt);
}

/** A new key record from validated fields. */
export function newKeyRecord(fields: KeyFields, keyHash: string, keyPrefix: string, now: number): Omit<KeyRecord, 'id'> {
  return {
    keyHash,
    keyPrefix,
    name: fields.name ?? 'unnamed',
    namespace: (fields.namespace ?? DEFAULT_NAMESPACE).toLowerCase(),
    credits: fields.credits ?? 0,
    totalSpent: 0,
    totalCalls: 0,
    createdAt: now,
    lastUsedAt: null,
    active: true,
    spendingLimit: fields.spendingLimit ?? 0,
    allowedTools: fields.allowedTools ?? [],
    deniedTools: fields.deniedTools ?? [],
    expiresAt: expiryOf(fields, now) ?? null,
    tags: fields.tags ?? {},
    ipAllowlist: fields.ipAllowlist ?? [],
    quota: quotaLimits(fields.quota),
    usage: emptyUsage(now),
  };
}
