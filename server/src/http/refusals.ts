import { gcra } from '../gate/gcra.ts';
import { LruMap } from '../lruMap.ts';

const MINUTE_MS = 60_000;

/** One client address's refused requests. */
interface AddressEntry {
  refused: number;
  lastAt: number;
  /** The GCRA bucket of the refused-request limit. */
  tat: number | undefined;
}

/** What `/status` (and metrics) show of the requests refused to clients without a valid key. */
export interface RefusalReport {
  total: number;
  byReason: Record<string, number>;
  /** The addresses with the most refusals among those still tracked, most first. */
  topAddresses: { address: string; refused: number; lastAt: string }[];
  /** Addresses in the table now. */
  tracked: number;
  /** Addresses dropped (least recently refused first) to keep the table bounded. */
  dropped: number;
  limitPerMin: number;
}

export interface RefusalOptions {
  /** Refused requests an address may send per minute before it gets 429; 0 = no limit. */
  limitPerMin: number;
  /** Addresses kept; past it, the least recently refused is dropped. */
  maxAddresses: number;
}

/** The reason counted when an address is over its limit and gets 429. */
export const OVER_LIMIT = 'refused_request_limit';

const TOP_ADDRESSES = 10;

/**
 * Requests on `/mcp` refused to clients without a valid key (no key, an unknown, revoked or expired
 * one, malformed requests), counted per client address in a bounded table and in memory only: anyone
 * can send them, so they must not write to disk or grow memory. Each address may send `limitPerMin`
 * refused requests a minute (bursts up to that); past it, the transport answers 429 until the
 * address's bucket has room again. Pure bookkeeping: the caller gives the time.
 */
export class RefusedTraffic {
  #limitPerMin: number;
  /** Least recently refused first. */
  readonly #addresses: LruMap<string, AddressEntry>;
  readonly #byReason = new Map<string, number>();
  #total = 0;

  constructor(options: RefusalOptions) {
    this.#limitPerMin = options.limitPerMin;
    this.#addresses = new LruMap(options.maxAddresses);
  }

  get limitPerMin(): number {
    return this.#limitPerMin;
  }

  set limitPerMin(limit: number) {
    this.#limitPerMin = limit;
  }

  /** Seconds until the address may be refused again, when it is over its limit now; else undefined. */
  retryAfterSeconds(address: string, now: number): number | undefined {
    if (this.#limitPerMin <= 0) return undefined;
    // A check is not a refusal: it leaves the address where it is in the table.
    const entry = this.#addresses.peek(address);
    if (entry?.tat === undefined) return undefined;
    const bucket = gcra(entry.tat, now, this.#limitPerMin, MINUTE_MS);
    return bucket.allowed ? undefined : Math.max(1, Math.ceil(bucket.retryAfterMs / 1000));
  }

  /** Counts a refused request; it takes from the address's limit unless it is the 429 itself. */
  record(address: string, reason: string, now: number): void {
    const entry = this.#addresses.get(address) ?? { refused: 0, lastAt: now, tat: undefined };
    this.#addresses.set(address, entry);
    entry.refused++;
    entry.lastAt = now;
    if (reason !== OVER_LIMIT && this.#limitPerMin > 0) {
      const bucket = gcra(entry.tat, now, this.#limitPerMin, MINUTE_MS);
      if (bucket.allowed) entry.tat = bucket.tat;
    }
    this.#total++;
    this.#byReason.set(reason, (this.#byReason.get(reason) ?? 0) + 1);
  }

  report(): RefusalReport {
    const top: [string, AddressEntry][] = [];
    for (const item of this.#addresses) {
      if (top.length === TOP_ADDRESSES && item[1].refused <= top.at(-1)![1].refused) continue;
      top.push(item);
      top.sort((a, b) => b[1].refused - a[1].refused);
      if (top.length > TOP_ADDRESSES) top.pop();
    }
    return {
      total: this.#total,
      byReason: Object.fromEntries(this.#byReason),
      topAddresses: top.map(([address, entry]) => ({ address, refused: entry.refused, lastAt: new Date(entry.lastAt).toISOString() })),
      tracked: this.#addresses.size,
      dropped: this.#addresses.dropped,
      limitPerMin: this.#limitPerMin,
    };
  }
}
