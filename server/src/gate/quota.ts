import type { Denial, QuotaLimits, QuotaUsage } from './types.ts';

const DAY_MS = 86_400_000;

/** The last day asked for, so that the hot path formats a date once a day rather than once a call. */
let lastDay = { start: 0, end: 0, day: '', month: '' };

function dayOf(now: number): typeof lastDay {
  if (now >= lastDay.start && now < lastDay.end) return lastDay;
  const start = Math.floor(now / DAY_MS) * DAY_MS;
  const iso = new Date(start).toISOString();
  lastDay = { start, end: start + DAY_MS, day: iso.slice(0, 10), month: iso.slice(0, 7) };
  return lastDay;
}

export function utcDay(now: number): string {
  return dayOf(now).day;
}

export function utcMonth(now: number): string {
  return dayOf(now).month;
}

/** The usage counters as they stand at `now`: counters of a past day or month read as zero. */
export function currentUsage(usage: QuotaUsage, now: number): QuotaUsage {
  const day = utcDay(now);
  const month = utcMonth(now);
  if (usage.day === day && usage.month === month) return usage;
  const sameMonth = usage.month === month;
  return {
    day,
    month,
    dailyCalls: usage.day === day ? usage.dailyCalls : 0,
    dailyCredits: usage.day === day ? usage.dailyCredits : 0,
    monthlyCalls: sameMonth ? usage.monthlyCalls : 0,
    monthlyCredits: sameMonth ? usage.monthlyCredits : 0,
  };
}

export function emptyUsage(now: number): QuotaUsage {
  return { day: utcDay(now), month: utcMonth(now), dailyCalls: 0, dailyCredits: 0, monthlyCalls: 0, monthlyCredits: 0 };
}

/** paygate-mcp 2.9.0's account of a call quota: `3/3 calls today` for one call, `3+2 would exceed 4 calls/day` for several. */
function callsOver(used: number, calls: number, limit: number, period: string, per: string): string {
  return calls === 1 ? `${used}/${limit} calls ${period}` : `${used}+${calls} would exceed ${limit} calls/${per}`;
}

/** Checks whether `calls` more calls costing `credits` in all fit in the quota. */
export function checkQuota(limits: QuotaLimits | null, usage: QuotaUsage, calls: number, credits: number): Denial | undefined {
  if (!limits) return undefined;
  if (limits.dailyCallLimit > 0 && usage.dailyCalls + calls > limits.dailyCallLimit) {
    return {
      reason: 'daily_call_quota_exceeded',
      legacyReason: `daily_call_quota_exceeded: ${callsOver(usage.dailyCalls, calls, limits.dailyCallLimit, 'today', 'day')}`,
      message: `daily call quota reached: ${usage.dailyCalls} of ${limits.dailyCallLimit} calls used today (resets at 00:00 UTC)`,
    };
  }
  if (limits.monthlyCallLimit > 0 && usage.monthlyCalls + calls > limits.monthlyCallLimit) {
    return {
      reason: 'monthly_call_quota_exceeded',
      legacyReason: `monthly_call_quota_exceeded: ${callsOver(usage.monthlyCalls, calls, limits.monthlyCallLimit, 'this month', 'month')}`,
      message: `monthly call quota reached: ${usage.monthlyCalls} of ${limits.monthlyCallLimit} calls used this month`,
    };
  }
  if (limits.dailyCreditLimit > 0 && usage.dailyCredits + credits > limits.dailyCreditLimit) {
    return {
      reason: 'daily_credit_quota_exceeded',
      legacyReason: `daily_credit_quota_exceeded: ${usage.dailyCredits}+${credits} would exceed ${limits.dailyCreditLimit} credits/day`,
      message: `daily credit quota reached: ${usage.dailyCredits} + ${credits} would exceed ${limits.dailyCreditLimit} credits today`,
    };
  }
  if (limits.monthlyCreditLimit > 0 && usage.monthlyCredits + credits > limits.monthlyCreditLimit) {
    return {
      reason: 'monthly_credit_quota_exceeded',
      legacyReason: `monthly_credit_quota_exceeded: ${usage.monthlyCredits}+${credits} would exceed ${limits.monthlyCreditLimit} credits/month`,
      message: `monthly credit quota reached: ${usage.monthlyCredits} + ${credits} would exceed ${limits.monthlyCreditLimit} credits this month`,
    };
  }
  return undefined;
}
