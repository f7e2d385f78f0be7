import type { KeyRecord } from '../../gate/types.ts';
import { recordFields } from './codec.ts';

/** Fields that calls in flight change too: an admin change to them is applied as a difference. */
const ADDITIVE = new Set(['credits', 'totalSpent', 'totalCalls', 'dailyCalls', 'dailyCredits', 'monthlyCalls', 'monthlyCredits']);
/** Fields that admission decisions are made on, outside Redis: changing one makes cached records stale. */
const DECIDED_ON = new Set(['keyHash', 'active', 'expiresAt', 'allowedTools', 'deniedTools', 'ipAllowlist', 'quota', 'spendingLimit']);

/** An admin change as the update script applies it (lua/keys.ts UPDATE_KEY). */
export interface KeyDiff {
  set: Record<string, string>;
  add: Record<string, string>;
  /** True when a field admissions are decided on changed: the key's `rev` goes up. */
  policy: boolean;
}

/** What `change` did to `before`, or undefined if nothing. */
export function keyDiff(before: KeyRecord, after: KeyRecord): KeyDiff | undefined {
  const old = recordFields(before);
  const now = recordFields(after);
  const diff: KeyDiff = { set: {}, add: {}, policy: false };
  let changed = false;
  for (const [field, value] of Object.entries(now)) {
    if (old[field] === value) continue;
    changed = true;
    if (ADDITIVE.has(field)) {
      diff.add[field] = String(Number(value) - Number(old[field]));
    } else {
      diff.set[field] = value;
      if (DECIDED_ON.has(field)) diff.policy = true;
    }
  }
  return changed ? diff : undefined;
}
