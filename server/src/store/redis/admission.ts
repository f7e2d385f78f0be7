import { checkToolAccess } from '../../gate/acl.ts';
import { globalBucket, toolBucket, type BatchDecision, type PolicyEngine } from '../../gate/policyEngine.ts';
import { callPrice, toolPolicy } from '../../gate/pricing.ts';
import type { CallRequest, Caller, KeyRecord } from '../../gate/types.ts';
import { applyBalance } from './codec.ts';

/** What the admit script (lua/admit.ts) decided, with the state it decided on. */
export type AdmitReply =
  | { outcome: 'missing' }
  | { outcome: 'stale' }
  | { outcome: 'cancelled' }
  | {
      outcome: 'ok' | 'denied' | 'shadow';
      /** Redis time of the decision. */
      now: number;
      /** The balance fields before the admission. */
      balance: string[];
      /** Stored TAT per bucket the script read: '' is the key's global bucket, else a tool. */
      tats: Map<string, number>;
      failedIndex: number;
      reason: string;
    };

/** The admit script's ARGV for these calls (see lua/admit.ts). */
export function admitArguments(
  policy: PolicyEngine,
  record: KeyRecord,
  rev: string,
  instanceId: string,
  reservationId: string,
  leaseMs: number,
  calls: readonly CallRequest[],
  toolStatsRow: (tool: string) => string,
): string[] {
  const rules = policy.policy;
  const quota = record.quota ?? rules.globalQuota;
  const argv = [
    String(record.id),
    rev,
    instanceId,
    reservationId,
    rules.shadowMode ? '1' : '0',
    String(rules.globalRateLimitPerMin),
    String(quota?.dailyCallLimit ?? 0),
    String(quota?.monthlyCallLimit ?? 0),
    String(quota?.dailyCreditLimit ?? 0),
    String(quota?.monthlyCreditLimit ?? 0),
    String(leaseMs),
    String(calls.length),
  ];
  for (const call of calls) {
    argv.push(
      call.tool,
      String(callPrice(rules, call)),
      String(toolPolicy(rules, call.tool).rateLimitPerMin ?? 0),
      checkToolAccess(record, call.tool)?.reason ?? '',
      toolStatsRow(call.tool),
    );
  }
  return argv;
}

export function parseAdmitReply(reply: unknown): AdmitReply {
  if (!Array.isArray(reply) || typeof reply[0] !== 'string') throw new Error(`the admit script gave an unexpected reply: ${JSON.stringify(reply)}`);
  const outcome = reply[0];
  if (outcome === 'missing' || outcome === 'stale' || outcome === 'cancelled') return { outcome } as AdmitReply;
  if (outcome !== 'ok' && outcome !== 'denied' && outcome !== 'shadow') throw new Error(`the admit script gave an unknown outcome: ${outcome}`);
  const [, now, balance, stored, failed, reason] = reply as [string, string, string[], string[], string, string];
  const tats = new Map<string, number>();
  for (let i = 0; i + 1 < stored.length; i += 2) if (stored[i + 1] !== '') tats.set(stored[i]!, Number(stored[i + 1]));
  return { outcome, now: Number(now), balance, tats, failedIndex: Number(failed) - 1, reason };
}

/** The key as the script found it: the record's own fields, the balance Redis returned. */
export function recordWithBalance(record: KeyRecord, balance: readonly string[]): KeyRecord {
  const copy = structuredClone(record);
  applyBalance(copy, balance);
  return copy;
}

/**
 * The decision the pure policy makes on the state the script decided on, so that denials read
 * exactly as with the SQLite ledger. The key checks were passed already (on this instance's clock):
 * the record they read is neutral here, so that Redis's clock cannot decide them differently.
 */
export function decideOnSnapshot(policy: PolicyEngine, caller: Caller, calls: readonly CallRequest[], state: KeyRecord, reply: Extract<AdmitReply, { now: number }>): BatchDecision {
  const checked: KeyRecord = { ...state, active: true, expiresAt: null, ipAllowlist: [] };
  const tats = new Map<string, number>();
  for (const [bucket, tat] of reply.tats) tats.set(bucket === '' ? globalBucket(state) : toolBucket(state, bucket), tat);
  return policy.evaluateBatch({ record: checked, presentedKey: true, clientIp: caller.clientIp }, calls, reply.now, tats);
}

/** Whether the pure decision says what the script did. */
export function agrees(decision: BatchDecision, reply: Extract<AdmitReply, { now: number }>): boolean {
  switch (reply.outcome) {
    case 'ok':
      return decision.allAllowed && decision.shadowDenial === undefined;
    case 'shadow':
      return decision.allAllowed && decision.shadowDenial?.failedIndex === reply.failedIndex && decision.shadowDenial.reason === reply.reason;
    case 'denied':
      return !decision.allAllowed && decision.failedIndex === reply.failedIndex && decision.reason === reply.reason;
  }
}
