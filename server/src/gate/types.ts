/** Limits on calls and credits per UTC day and month. 0 in a field means "no limit". */
export interface QuotaLimits {
  dailyCallLimit: number;
  monthlyCallLimit: number;
  dailyCreditLimit: number;
  monthlyCreditLimit: number;
}

/** What a key has used in the current UTC day (`YYYY-MM-DD`) and month (`YYYY-MM`). */
export interface QuotaUsage {
  day: string;
  month: string;
  dailyCalls: number;
  dailyCredits: number;
  monthlyCalls: number;
  monthlyCredits: number;
}

/**
 * An API key as the gate sees it. The key itself is never kept: only its SHA-256 hash and a short
 * prefix for people to recognise it by. Times are milliseconds since the epoch.
 */
export interface KeyRecord {
  id: number;
  keyHash: string;
  keyPrefix: string;
  name: string;
  namespace: string;
  credits: number;
  totalSpent: number;
  totalCalls: number;
  createdAt: number;
  lastUsedAt: number | null;
  active: boolean;
  /** Cap on `totalSpent`; 0 means no cap. */
  spendingLimit: number;
  /** When non-empty, only these tools may be called. */
  allowedTools: string[];
  deniedTools: string[];
  expiresAt: number | null;
  tags: Record<string, string>;
  /** IPv4/IPv6 addresses or CIDR ranges; empty means any address. */
  ipAllowlist: string[];
  /** The key's own quota; null means the gate's global quota applies. */
  quota: QuotaLimits | null;
  usage: QuotaUsage;
}

export interface ToolPolicy {
  creditsPerCall?: number;
  /** Extra credits per KiB of JSON arguments, rounded up per call. */
  creditsPerKbInput?: number;
  /** Calls per minute per key for this tool; 0 or absent means only the global limit applies. */
  rateLimitPerMin?: number;
}

/** The gate-wide rules: what a call costs and how fast and how much a key may call. */
export interface Policy {
  defaultCreditsPerCall: number;
  toolPricing: Readonly<Record<string, ToolPolicy>>;
  /** Calls per minute per key across all tools; 0 means no limit. */
  globalRateLimitPerMin: number;
  globalQuota: QuotaLimits | null;
  /** Decide and record, but never block. */
  shadowMode: boolean;
}

export const DENY_REASONS = [
  'missing_api_key',
  'invalid_api_key',
  'key_revoked',
  'api_key_expired',
  'ip_not_allowed',
  'tool_not_allowed',
  'tool_denied',
  'rate_limited',
  'tool_rate_limited',
  'insufficient_credits',
  'spending_limit_exceeded',
  'daily_call_quota_exceeded',
  'monthly_call_quota_exceeded',
  'daily_credit_quota_exceeded',
  'monthly_credit_quota_exceeded',
] as const;

export type DenyReason = (typeof DENY_REASONS)[number];

/** The state of the rate limit that governs a call, for `X-RateLimit-*` headers. */
export interface RateLimitStatus {
  limit: number;
  remaining: number;
  /** Seconds until the limit is fully replenished. */
  resetSeconds: number;
}

/** A rate-limit bucket the call would consume, with its theoretical arrival time after the call. */
export interface BucketUpdate {
  bucket: string;
  tat: number;
}

export interface Denial {
  reason: DenyReason;
  /** A sentence a person can act on. */
  message: string;
  /**
   * paygate-mcp 2.9.0's words for the refusal (`insufficient_credits: need 5, have 2`). Error messages
   * start with them, so that the matchers of its clients keep working.
   */
  legacyReason: string;
  /** For rate limits: when a retry can succeed. */
  retryAfterSeconds?: number;
}

/** One call to decide on: the tool and the size of its JSON arguments in bytes. */
export interface CallRequest {
  tool: string;
  argBytes: number;
  /** The price fixed already (a Multi Round-Trip retry keeps its first attempt's); else the tool's price now. */
  credits?: number;
}

/** Who is calling: the key record (undefined when the key is unknown) and the client address. */
export interface Caller {
  record: KeyRecord | undefined;
  /** True when the request carried a key at all. */
  presentedKey: boolean;
  clientIp: string | undefined;
}
