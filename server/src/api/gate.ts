import { admit } from '../engine/admit.ts';
import { PolicyEngine, type BatchDecision } from '../gate/policyEngine.ts';
import { chargedInputBytes, priceOf } from '../gate/pricing.ts';
import type { CallRequest, Caller, DenyReason, Policy, QuotaLimits, ToolPolicy } from '../gate/types.ts';
import { displayPrefix, generateApiKey, hashApiKey } from '../keys/apiKey.ts';
import { newKeyRecord, quotaLimits, type KeyFields } from '../keys/fields.ts';
import type { InProcessLedger } from '../store/ledger.ts';
import { openLedger, openStateFile } from '../store/open.ts';

export type { DenyReason, KeyFields, QuotaLimits, ToolPolicy };

export interface GateOptions {
  /** Credits a call costs when `toolPricing` does not name the tool (default 1). */
  defaultCreditsPerCall?: number;
  toolPricing?: Record<string, ToolPolicy>;
  /** Calls per minute per key over all tools; 0 (the default here) means no limit. */
  globalRateLimitPerMin?: number;
  globalQuota?: Partial<QuotaLimits> | null;
  shadowMode?: boolean;
  /** A SQLite file that keeps keys, balances and usage; in memory when absent. */
  stateFile?: string;
  /** The clock, in milliseconds since the epoch. */
  now?: () => number;
}

/** A tool call to decide on, as MCP's `tools/call` names it. */
export interface CallInput {
  name: string;
  arguments?: Record<string, unknown>;
}

/** What the gate says about a call or a batch of calls. */
export interface Verdict {
  /** True when every call may go ahead (in shadow mode: always, with `reason` saying what would have been refused). */
  allAllowed: boolean;
  /** The first call that would be refused, or null. */
  failedIndex: number | null;
  reason: DenyReason | null;
  /** A sentence a person can act on, or null. */
  message: string | null;
  /** What the calls cost together. */
  totalCredits: number;
  items: { tool: string; credits: number }[];
  /** The key's balance (after the charge, for `consume`), or null for an unknown key. */
  remainingCredits: number | null;
  retryAfterSeconds?: number;
}

/**
 * PayGate's policy as a library: keys, prices, rate limits, quotas, spending limits and ACLs,
 * without HTTP or an MCP server. `evaluate` and `evaluateBatch` only decide; `consume` decides and,
 * when allowed, takes the credits and the rate-limit capacity and records the calls.
 *
 * ```ts
 * import { Gate } from 'paygate-mcp';
 * const gate = new Gate({ toolPricing: { search: { creditsPerCall: 5 } } });
 * const { key } = gate.createKey({ name: 'alice', credits: 12 });
 * gate.evaluateBatch(key, [{ name: 'search' }, { name: 'search' }, { name: 'search' }]);
 * // → { allAllowed: false, failedIndex: 2, reason: 'insufficient_credits', totalCredits: 15, ... }
 * ```
 */
export class Gate {
  readonly #engine: PolicyEngine;
  readonly #ledger: InProcessLedger;
  readonly #now: () => number;

  constructor(options: GateOptions = {}) {
    const policy: Policy = {
      defaultCreditsPerCall: options.defaultCreditsPerCall ?? 1,
      toolPricing: options.toolPricing ?? {},
      globalRateLimitPerMin: options.globalRateLimitPerMin ?? 0,
      globalQuota: quotaLimits(options.globalQuota),
      shadowMode: options.shadowMode ?? false,
    };
    this.#engine = new PolicyEngine(policy);
    this.#ledger = openLedger(openStateFile(options.stateFile ?? ':memory:'));
    this.#now = options.now ?? Date.now;
  }

  /** A new key with these settings. The key is returned once; only its hash is kept. */
  createKey(fields: KeyFields = {}): { key: string; id: number } {
    const key = generateApiKey();
    const record = this.#ledger.insert(newKeyRecord(fields, hashApiKey(key), displayPrefix(key), this.#now()));
    return { key, id: record.id };
  }

  /** Adds credits to a key; returns the new balance. */
  topUp(apiKey: string, credits: number): number {
    if (!Number.isSafeInteger(credits) || credits <= 0) throw new RangeError(`credits must be a positive whole number, not ${credits}`);
    const record = this.#ledger.findByHash(hashApiKey(apiKey));
    if (!record) throw new Error('no such key');
    return this.#ledger.update(record, (draft) => {
      draft.credits += credits;
    }).credits;
  }

  /** The key's credits, or undefined for an unknown key. */
  balance(apiKey: string): number | undefined {
    return this.#ledger.findByHash(hashApiKey(apiKey))?.credits;
  }

  evaluate(apiKey: string | undefined, call: CallInput, clientIp?: string): Verdict {
    return this.evaluateBatch(apiKey, [call], clientIp);
  }

  /** Decides on the calls as one: all may go ahead, or the first that may not is named. Changes nothing. */
  evaluateBatch(apiKey: string | undefined, calls: readonly CallInput[], clientIp?: string): Verdict {
    const { caller, requests } = this.#request(apiKey, calls, clientIp);
    return this.#verdict(this.#engine.evaluateBatch(caller, requests, this.#now()), requests);
  }

  /**
   * Decides, and if the calls may go ahead, charges them: credits, rate limits and quotas are
   * taken and the calls are recorded as charged; refused calls of a stored key are recorded as
   * refused, as the gate does (a missing or unknown key writes nothing). Resolves when that is on
   * disk (for a `stateFile`).
   */
  async consume(apiKey: string | undefined, calls: readonly CallInput[], clientIp?: string): Promise<Verdict> {
    const now = this.#now();
    const { caller, requests } = this.#request(apiKey, calls, clientIp);
    const { decision, reservation } = admit(this.#engine, this.#ledger, caller, requests, now);
    const verdict = this.#verdict(decision, requests);
    if (!reservation) return verdict;
    await reservation.durable;
    await Promise.all(reservation.charges.map((charge) => this.#ledger.settle(reservation, charge, null, now)));
    return { ...verdict, remainingCredits: reservation.record.credits };
  }

  close(): void {
    this.#ledger.close();
  }

  #request(apiKey: string | undefined, calls: readonly CallInput[], clientIp: string | undefined): { caller: Caller; requests: CallRequest[] } {
    const record = apiKey === undefined ? undefined : this.#ledger.findByHash(hashApiKey(apiKey));
    const requests = calls.map((call) => ({ tool: call.name, argBytes: chargedInputBytes(this.#engine.policy, call.name, call.arguments) }));
    return { caller: { record, presentedKey: apiKey !== undefined, clientIp }, requests };
  }

  #verdict(decision: BatchDecision, requests: readonly CallRequest[]): Verdict {
    const remainingCredits = decision.record?.credits ?? null;
    if (decision.allAllowed) {
      const shadow = decision.shadowDenial;
      return {
        allAllowed: true,
        failedIndex: shadow?.failedIndex ?? null,
        reason: shadow?.reason ?? null,
        message: shadow?.message ?? null,
        totalCredits: decision.totalCredits,
        items: decision.items,
        remainingCredits,
      };
    }
    const verdict: Verdict = {
      allAllowed: false,
      failedIndex: decision.failedIndex,
      reason: decision.reason,
      message: decision.message,
      totalCredits: decision.totalCredits,
      items: requests.map((request) => ({ tool: request.tool, credits: priceOf(this.#engine.policy, request.tool, request.argBytes) })),
      remainingCredits,
    };
    if (decision.retryAfterSeconds !== undefined) verdict.retryAfterSeconds = decision.retryAfterSeconds;
    return verdict;
  }
}
