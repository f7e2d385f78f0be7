import type { KeyQuery, KeyTotals, NamespaceSummary, ToolStats, UsageEvent, UsageQuery } from '../types.ts';
import type { KeyRecord } from '../../gate/types.ts';
import { entryId, storedKey, usageEvent } from './codec.ts';
import type { KeySpace } from './keySpace.ts';
import type { LedgerScripts, RedisClient } from './scripts.ts';

/** Keys or events read per step when a query filters what Redis cannot (tags; key or namespace of events). */
const SCAN_STEP = 500;
const MINUTE_MS = 60_000;

type Entry = [id: string, fields: string[]];

/** Runs one Redis command and answers its reply. */
export type CommandRunner = <T>(command: Promise<T>) => Promise<T>;

function matchesTags(record: KeyRecord, tags: Readonly<Record<string, string>> | undefined): boolean {
  return Object.entries(tags ?? {}).every(([tag, value]) => record.tags[tag] === value);
}

/**
 * The ledger's reads for reports and admin listings. Totals come from the hashes the scripts keep
 * (no scans); listings by tag and usage by key or namespace read the ids or the stream in steps
 * and filter here.
 */
export class RedisReports {
  readonly #client: RedisClient;
  readonly #keys: KeySpace;
  readonly #scripts: LedgerScripts;
  readonly #call: CommandRunner;

  /** `call` runs each command (the ledger's runner: it turns Redis failures into `LedgerUnavailableError`). */
  constructor(client: RedisClient, keys: KeySpace, scripts: LedgerScripts, call: CommandRunner) {
    this.#client = client;
    this.#keys = keys;
    this.#scripts = scripts;
    this.#call = call;
  }

  async listKeys(query: KeyQuery): Promise<KeyRecord[]> {
    const index = query.namespace === undefined ? this.#keys.keys : this.#keys.namespace(query.namespace);
    const offset = Math.max(0, Math.trunc(query.offset ?? 0));
    const limit = query.limit === undefined ? Number.POSITIVE_INFINITY : Math.max(0, Math.trunc(query.limit));
    const filtered = Object.keys(query.tags ?? {}).length > 0;
    if (!filtered) {
      const stop = Number.isFinite(limit) ? offset + limit - 1 : -1;
      if (limit === 0) return [];
      return this.#records(await this.#call(this.#client.zrange(index, String(offset), String(stop))));
    }
    const found: KeyRecord[] = [];
    let skipped = 0;
    for (let start = 0; found.length < limit; start += SCAN_STEP) {
      const ids = await this.#call(this.#client.zrange(index, String(start), String(start + SCAN_STEP - 1)));
      for (const record of await this.#records(ids)) {
        if (!matchesTags(record, query.tags)) continue;
        if (skipped < offset) skipped++;
        else if (found.length < limit) found.push(record);
      }
      if (ids.length < SCAN_STEP) break;
    }
    return found;
  }

  async countKeys(query: KeyQuery): Promise<number> {
    if (Object.keys(query.tags ?? {}).length === 0) {
      return this.#call(this.#client.zcard(query.namespace === undefined ? this.#keys.keys : this.#keys.namespace(query.namespace)));
    }
    return (await this.listKeys({ namespace: query.namespace, tags: query.tags })).length;
  }

  async namespaces(): Promise<NamespaceSummary[]> {
    const names = (await this.#call(this.#client.smembers(this.#keys.namespaces))).sort();
    const totals = await Promise.all(names.map((name) => this.keyTotals(name)));
    return names
      .map((namespace, i) => ({ namespace, totals: totals[i]! }))
      .filter(({ totals: t }) => t.keys > 0)
      .map(({ namespace, totals: t }) => ({ namespace, keyCount: t.keys, activeKeys: t.activeKeys, totalCredits: t.totalCredits, totalSpent: t.totalSpent }));
  }

  async keyTotals(namespace?: string): Promise<KeyTotals> {
    if (namespace === undefined) {
      const names = await this.#call(this.#client.smembers(this.#keys.namespaces));
      const all = await Promise.all(names.map((name) => this.keyTotals(name)));
      return all.reduce(
        (sum, t) => ({
          keys: sum.keys + t.keys,
          activeKeys: sum.activeKeys + t.activeKeys,
          totalCredits: sum.totalCredits + t.totalCredits,
          totalSpent: sum.totalSpent + t.totalSpent,
          totalCalls: sum.totalCalls + t.totalCalls,
        }),
        { keys: 0, activeKeys: 0, totalCredits: 0, totalSpent: 0, totalCalls: 0 },
      );
    }
    const t = await this.#call(this.#client.hgetall(this.#keys.totals(namespace)));
    const n = (field: string) => Number(t[field] ?? 0);
    return { keys: n('keys'), activeKeys: n('activeKeys'), totalCredits: n('totalCredits'), totalSpent: n('totalSpent'), totalCalls: n('totalCalls') };
  }

  async usage(query: UsageQuery): Promise<UsageEvent[]> {
    let from = query.afterId === undefined ? 1 : query.afterId + 1;
    if (query.sinceMs !== undefined) from = Math.max(from, await this.firstEventIdAtOrAfter(query.sinceMs));
    const events: UsageEvent[] = [];
    const filtered = query.keyId !== undefined || query.namespace !== undefined;
    while (events.length < query.limit) {
      const step = filtered ? SCAN_STEP : query.limit - events.length;
      const entries = (await this.#call(this.#client.xrange(this.#keys.usage, entryId(from), '+', 'COUNT', step))) as Entry[];
      for (const [id, fields] of entries) {
        const event = usageEvent(id, fields);
        if (query.keyId !== undefined && event.keyId !== query.keyId) continue;
        if (query.namespace !== undefined && event.namespace !== query.namespace) continue;
        if (events.length < query.limit) events.push(event);
      }
      if (entries.length < step) break;
      from = usageEvent(entries.at(-1)![0], []).id + 1;
    }
    return events;
  }

  async toolStats(): Promise<ReadonlyMap<string, ToolStats>> {
    const stats = new Map<string, ToolStats>();
    for (const [field, value] of Object.entries(await this.#call(this.#client.hgetall(this.#keys.toolStats)))) {
      const colon = field.indexOf(':');
      const kind = field.slice(0, colon) as keyof ToolStats;
      const row = field.slice(colon + 1);
      const entry = stats.get(row) ?? { calls: 0, credits: 0, denied: 0 };
      entry[kind] = Number(value);
      stats.set(row, entry);
    }
    return stats;
  }

  async denyReasons(namespace?: string): Promise<Map<string, number>> {
    const counts = await this.#call(this.#client.hgetall(this.#keys.denyReasons(namespace)));
    return new Map(Object.entries(counts).map(([reason, count]) => [reason, Number(count)] as [string, number]).filter(([, count]) => count > 0));
  }

  /**
   * The per-minute index gives the first event of the minute `ms` falls in (or of a later one);
   * from there the stream is read until an event at or after `ms`.
   */
  async firstEventIdAtOrAfter(ms: number): Promise<number> {
    const minute = Math.floor(ms / MINUTE_MS);
    const [first] = await this.#call(this.#client.zrangebyscore(this.#keys.eventMinutes, minute, '+inf', 'LIMIT', 0, 1));
    if (first === undefined) return this.#nextEventId();
    let from = Number(first);
    for (;;) {
      const entries = (await this.#call(this.#client.xrange(this.#keys.usage, entryId(from), '+', 'COUNT', SCAN_STEP))) as Entry[];
      for (const [id, fields] of entries) {
        const event = usageEvent(id, fields);
        if (event.at >= ms) return event.id;
      }
      if (entries.length < SCAN_STEP) return this.#nextEventId();
      from = usageEvent(entries.at(-1)![0], []).id + 1;
    }
  }

  async deleteOldestEvents(beforeId: number, limit: number): Promise<number> {
    if (limit <= 0) return 0;
    return Number(await this.#call(this.#scripts.trimEvents(String(Math.trunc(beforeId)), String(Math.trunc(limit)))));
  }

  async #nextEventId(): Promise<number> {
    return Number((await this.#call(this.#client.get(this.#keys.eventSequence))) ?? 0) + 1;
  }

  async #records(ids: readonly string[]): Promise<KeyRecord[]> {
    const all = await Promise.all(ids.map((id) => this.#call(this.#client.hgetall(this.#keys.key(Number(id))))));
    return all.flatMap((fields, i) => (Object.keys(fields).length === 0 ? [] : [storedKey(Number(ids[i]), fields).record]));
  }
}
