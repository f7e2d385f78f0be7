import { currentUsage, utcDay, utcMonth } from './quota.ts';
import type { KeyRecord } from './types.ts';

/** Debits an admitted call (or batch of `calls` calls) from the key's balance, totals and quota use. */
export function applyCharge(record: KeyRecord, credits: number, calls: number, now: number): void {
  const usage = currentUsage(record.usage, now);
  record.credits -= credits;
  record.totalSpent += credits;
  record.totalCalls += calls;
  record.lastUsedAt = now;
  record.usage = {
    ...usage,
    dailyCalls: usage.dailyCalls + calls,
    dailyCredits: usage.dailyCredits + credits,
    monthlyCalls: usage.monthlyCalls + calls,
    monthlyCredits: usage.monthlyCredits + credits,
  };
}

/**
 * Undoes a charge made at `chargedAt`: the credits go back, and the call no longer counts in the
 * totals or in the quota of the day and month it was made in (if those are still current).
 */
export function applyRefund(record: KeyRecord, credits: number, calls: number, chargedAt: number, now: number): void {
  const usage = currentUsage(record.usage, now);
  const sameDay = utcDay(chargedAt) === usage.day;
  const sameMonth = utcMonth(chargedAt) === usage.month;
  record.credits += credits;
  record.totalSpent = Math.max(0, record.totalSpent - credits);
  record.totalCalls = Math.max(0, record.totalCalls - calls);
  record.usage = {
    ...usage,
    dailyCalls: sameDay ? Math.max(0, usage.dailyCalls - calls) : usage.dailyCalls,
    dailyCredits: sameDay ? Math.max(0, usage.dailyCredits - credits) : usage.dailyCredits,
    monthlyCalls: sameMonth ? Math.max(0, usage.monthlyCalls - calls) : usage.monthlyCalls,
    monthlyCredits: sameMonth ? Math.max(0, usage.monthlyCredits - credits) : usage.monthlyCredits,
  };
}
