import { checkToolAccess } from './acl.ts';
import { gcra } from './gcra.ts';
import { ipAllowed } from './ipRules.ts';
import { callPrice, toolPolicy } from './pricing.ts';
import { checkQuota, currentUsage } from './quota.ts';
import type {
  BucketUpdate,
  CallRequest,
  Caller,
  Denial,
  KeyRecord,
  Policy,
  RateLimitStatus,
} from './types.ts';

const MINUTE_MS = 60_000;

export interface BatchItemPrice {
  tool: string;
  credits: number;
}

export type BatchDecision =
  | {
      allAllowed: true;
      totalCredits: number;
      items: BatchItemPrice[];
      shadowDenial?: Denial & { failedIndex: number };
      record: KeyRecord | undefined;
      buckets: BucketUpdate[];
      rateLimit: RateLimitStatus | null;
    }
  | (Denial & {
      allAllowed: false;
      failedIndex: number;
      totalCredits: number;
      record: KeyRecord | undefined;
      rateLimit: RateLimitStatus | null;
    });

interface Running {
  buckets: BucketUpdate[];
  credits: number;
  rateLimit: RateLimitStatus | null;
}

function bucketTat(running: Running, stored: ReadonlyMap<string, number>, bucket: string): number | undefined {
  for (let i = running.buckets.length - 1; i >= 0; i--) {
    const entry = running.buckets[i]!;
    if (entry.bucket === bucket) return entry.tat;
  }
  return stored.get(bucket);
}

function keyDenial(caller: Caller, now: number): Denial | undefined {
  const { record } = caller;
  if (!caller.presentedKey) {
    return { reason: 'missing_api_key', legacyReason: 'missing_api_key', message: 'an API key is required: send it in the X-API-Key header or as Authorization: Bearer <key>' };
  }
  if (!record) return { reason: 'invalid_api_key', legacyReason: 'invalid_api_key', message: 'the API key is not valid' };
  // paygate-mcp 2.9.0 did not tell a revoked key from an unknown one.
  if (!record.active) return { reason: 'key_revoked', legacyReason: 'invalid_api_key', message: 'the API key has been revoked' };
  if (record.expiresAt !== null && record.expiresAt <= now) {
    return { reason: 'api_key_expired', legacyReason: 'api_key_expired', message: `the API key expired at ${new Date(record.expiresAt).toISOString()}` };
  }
  if (!ipAllowed(record.ipAllowlist, caller.clientIp)) {
    return {
      reason: 'ip_not_allowed',
      legacyReason: `ip_not_allowed: ${caller.clientIp ?? 'unknown'} not in allowlist`,
      message: `requests from ${caller.clientIp ?? 'an unknown address'} are not in this key's IP allowlist`,
    };
  }
  return undefined;
}

/**
 * The policy engine. `evaluate` and `evaluateBatch` only read: they say whether calls may go ahead,
 * what they cost and which rate-limit buckets they would fill. `consume` records an admitted call's
 * buckets. Nothing here does I/O; balances are the caller's to debit.
 */
export class PolicyEngine {
  #policy: Policy;
  readonly #tats = new Map<string, number>();

  constructor(policy: Policy) {
    this.#policy = policy;
  }

  get policy(): Policy {
    return this.#policy;
  }

  setPolicy(policy: Policy): void {
    this.#policy = policy;
  }

  /** The checks on the key alone (present, valid, active, not expired, allowed from this address). */
  checkKey(caller: Caller, now: number): Denial | undefined {
    return keyDenial(caller, now);
  }

  /**
   * Decides on several calls as one: they are admitted together or not at all. Each call counts
   * against rate limits and quotas as if made alone, in order; `failedIndex` names the first call
   * that would be refused. `tats` replaces the engine's own rate-limit state (bucket name → TAT),
   * for a ledger that keeps rate limits in a shared store and decides on a snapshot of them.
   */
  evaluateBatch(caller: Caller, calls: readonly CallRequest[], now: number, tats: ReadonlyMap<string, number> = this.#tats): BatchDecision {
    const policy = this.#policy;
    const { record } = caller;
    const running: Running = { buckets: [], credits: 0, rateLimit: null };
    const items: BatchItemPrice[] = [];
    const identity = keyDenial(caller, now);
    let denial: (Denial & { failedIndex: number }) | undefined = identity && { ...identity, failedIndex: 0 };
    for (let index = 0; index < calls.length && !denial; index++) {
      const call = calls[index]!;
      const credits = callPrice(policy, call);
      items.push({ tool: call.tool, credits });
      const itemDenial = this.#checkCall(record!, call.tool, credits, index + 1, running, tats, now);
      if (itemDenial) denial = { ...itemDenial, failedIndex: index };
    }
    if (denial && !policy.shadowMode) {
      const totalCredits = calls.reduce((sum, call) => sum + callPrice(policy, call), 0);
      return { allAllowed: false, ...denial, totalCredits, record, rateLimit: running.rateLimit };
    }
    const chargeable = denial === undefined;
    const decision: BatchDecision = {
      allAllowed: true,
      totalCredits: chargeable ? running.credits : 0,
      items: chargeable ? items : calls.map((call) => ({ tool: call.tool, credits: 0 })),
      record,
      buckets: chargeable ? running.buckets : [],
      rateLimit: running.rateLimit,
    };
    if (denial) decision.shadowDenial = denial;
    return decision;
  }

  /** Records an admitted call's rate-limit use. */
  consume(buckets: readonly BucketUpdate[]): void {
    for (const { bucket, tat } of buckets) this.#tats.set(bucket, tat);
  }

  /** The rate-limit state a key would see now, for headers on answers that are not tool calls. */
  rateLimitStatus(record: KeyRecord, now: number): RateLimitStatus | null {
    const limit = this.#policy.globalRateLimitPerMin;
    if (limit <= 0) return null;
    // A call of no cost: what the bucket holds now, without taking from it.
    const { remaining, resetMs } = gcra(this.#tats.get(globalBucket(record)), now, limit, MINUTE_MS, 0);
    return { limit, remaining, resetSeconds: Math.ceil(resetMs / 1000) };
  }

  /** Forgets buckets that have fully drained, so idle keys cost no memory. */
  sweep(now: number): void {
    for (const [bucket, tat] of this.#tats) if (tat <= now) this.#tats.delete(bucket);
  }

  #checkCall(record: KeyRecord, tool: string, credits: number, callsSoFar: number, running: Running, tats: ReadonlyMap<string, number>, now: number): Denial | undefined {
    const policy = this.#policy;
    const access = checkToolAccess(record, tool);
    if (access) return access;

    const globalLimit = policy.globalRateLimitPerMin;
    if (globalLimit > 0) {
      const denial = this.#take(running, tats, globalBucket(record), globalLimit, now, () => ({
        reason: 'rate_limited',
        legacyReason: `rate_limited: ${globalLimit} calls/min exceeded`,
        message: `rate limit reached: this key may make ${globalLimit} calls per minute`,
      }));
      if (denial) return denial;
    }
    const toolLimit = toolPolicy(policy, tool).rateLimitPerMin ?? 0;
    if (toolLimit > 0) {
      const denial = this.#take(running, tats, toolBucket(record, tool), toolLimit, now, () => ({
        reason: 'tool_rate_limited',
        legacyReason: `tool_rate_limited: ${tool} limited to ${toolLimit} calls/min`,
        message: `rate limit reached: this key may call "${tool}" ${toolLimit} times per minute`,
      }));
      if (denial) return denial;
    }

    const total = running.credits + credits;
    if (total > record.credits) {
      return {
        reason: 'insufficient_credits',
        legacyReason: `insufficient_credits: need ${total}, have ${record.credits}`,
        message: `not enough credits: ${callsSoFar > 1 ? `these ${callsSoFar} calls cost` : 'this call costs'} ${total}, the key has ${record.credits}; top up to continue`,
      };
    }
    if (record.spendingLimit > 0 && record.totalSpent + total > record.spendingLimit) {
      return {
        reason: 'spending_limit_exceeded',
        legacyReason: `spending_limit_exceeded: limit ${record.spendingLimit}, spent ${record.totalSpent}, need ${total}`,
        message: `spending limit reached: ${record.totalSpent} of ${record.spendingLimit} credits spent, ${total} more needed`,
      };
    }
    const quota = checkQuota(record.quota ?? policy.globalQuota, currentUsage(record.usage, now), callsSoFar, total);
    if (quota) return quota;
    running.credits = total;
    return undefined;
  }

  #take(running: Running, tats: ReadonlyMap<string, number>, bucket: string, limit: number, now: number, deny: () => Denial): Denial | undefined {
    const result = gcra(bucketTat(running, tats, bucket), now, limit, MINUTE_MS);
    running.rateLimit = { limit, remaining: result.remaining, resetSeconds: Math.ceil(result.resetMs / 1000) };
    if (!result.allowed) {
      const retry = result.retryAfterMs;
      return { ...deny(), retryAfterSeconds: Number.isFinite(retry) ? Math.max(1, Math.ceil(retry / 1000)) : MINUTE_MS / 1000 };
    }
    running.buckets.push({ bucket, tat: result.tat });
    return undefined;
  }
}

/** The rate-limit bucket of a key's calls to all tools. */
export function globalBucket(record: Pick<KeyRecord, 'id'>): string {
  return String(record.id);
}

/** The rate-limit bucket of a key's calls to one tool. */
export function toolBucket(record: Pick<KeyRecord, 'id'>, tool: string): string {
  return `${record.id}\u0000${tool}`;
}
