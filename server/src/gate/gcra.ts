/**
 * Generic cell rate algorithm: a rate limit of `limit` calls per `periodMs`, bursts up to `limit`,
 * kept as one number per bucket (the theoretical arrival time, TAT). Pure: the caller stores the TAT.
 */
export interface GcraResult {
  allowed: boolean;
  /** The bucket's TAT after the call, to be stored if the call goes ahead. */
  tat: number;
  /** Calls still possible right after this one. */
  remaining: number;
  /** Milliseconds until the bucket is empty again (all capacity back). */
  resetMs: number;
  /** When denied: milliseconds until a call of the same cost can pass. */
  retryAfterMs: number;
}

export function gcra(storedTat: number | undefined, now: number, limit: number, periodMs: number, cost = 1): GcraResult {
  const interval = periodMs / limit;
  const base = storedTat === undefined || storedTat < now ? now : storedTat;
  const tat = base + cost * interval;
  const allowAt = tat - periodMs;
  if (allowAt > now) {
    const backlog = base - now;
    return {
      allowed: false,
      tat: base,
      remaining: Math.max(0, Math.floor((periodMs - backlog) / interval)),
      resetMs: Math.ceil(backlog),
      retryAfterMs: cost > limit ? Number.POSITIVE_INFINITY : Math.ceil(allowAt - now),
    };
  }
  return {
    allowed: true,
    tat,
    remaining: Math.floor((periodMs - (tat - now)) / interval),
    resetMs: Math.ceil(tat - now),
    retryAfterMs: 0,
  };
}
