import type { BatchDecision, PolicyEngine } from '../gate/policyEngine.ts';
import type { CallRequest, Caller } from '../gate/types.ts';
import type { InProcessLedger, LocalReservation } from '../store/ledger.ts';

/** A decision on calls, and the credits reserved for them in this process when they go ahead under a key. */
export interface LocalAdmission {
  decision: BatchDecision;
  /** Debited already; the calls may be made once `durable` settles. */
  reservation: LocalReservation | undefined;
}

/**
 * Decides on calls as one and acts on the decision in this process's ledger: a refusal (in shadow
 * mode, what would have been one) of a stored key is recorded as a usage event of that key; calls
 * that go ahead take their rate-limit capacity and have their credits reserved, in the same
 * synchronous step. Callers without a stored key write nothing: anyone can send those, so the
 * transport counts them in memory instead. The SQLite ledger and the `Gate` library admit calls
 * this way. Throws a `LedgerUnavailableError` when charges cannot be recorded.
 */
export function admit(policy: PolicyEngine, ledger: InProcessLedger, caller: Caller, calls: readonly CallRequest[], now: number): LocalAdmission {
  const decision = policy.evaluateBatch(caller, calls, now);
  if (!decision.allAllowed) {
    if (caller.record) ledger.recordRefusal(caller.record, calls[decision.failedIndex]?.tool ?? '', decision.reason, 'denied', now);
    return { decision, reservation: undefined };
  }
  const { shadowDenial, record } = decision;
  if (shadowDenial && caller.record) ledger.recordRefusal(caller.record, calls[shadowDenial.failedIndex]?.tool ?? '', shadowDenial.reason, 'shadow', now);
  if (!record || shadowDenial) return { decision, reservation: undefined };
  const reservation = ledger.reserve(record, decision.items, now);
  policy.consume(decision.buckets);
  return { decision, reservation };
}
