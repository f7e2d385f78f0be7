import { ReplyError } from 'ioredis';
import { applyCharge } from '../../gate/accounting.ts';
import type { PolicyEngine } from '../../gate/policyEngine.ts';
import type { CallRequest, Caller, KeyRecord } from '../../gate/types.ts';
import { LedgerUnavailableError, type Admission, type Charge, type Ledger, type Reservation } from '../contract.ts';
import type { KeyQuery, KeyTotals, NamespaceSummary, ToolStats, UsageEvent, UsageQuery } from '../types.ts';
import { admitArguments, agrees, decideOnSnapshot, parseAdmitReply, recordWithBalance } from './admission.ts';
import { pairs, recordFields, storedKey, type StoredKey } from './codec.ts';
import { keyDiff } from './keyDiff.ts';
import type { KeySpace } from './keySpace.ts';
import { RecordCache, type CachedKey } from './recordCache.ts';
import { RedisReports } from './reports.ts';
import { defineScripts, type LedgerScripts, type RedisClient } from './scripts.ts';
import { Settler } from './settler.ts';

/** Key records kept in memory: enough for every active client of a busy gate. */
export const KEY_CACHE_SIZE = 10_000;
/** Admissions decided on a record that an admin change overtook are retried this many times. */
const STALE_RETRIES = 3;
/** Reservations of dead instances refunded per reaper run. */
const REAP_BUDGET = 100;

export interface RedisLedgerParts {
  client: RedisClient;
  /** A second connection, for the invalidation channel. */
  subscriber: RedisClient;
  keys: KeySpace;
  /** Unique among the instances sharing the prefix: reservation ids and leases carry it. */
  instanceId: string;
  leaseMs: number;
  /** The Redis address without its password. */
  location: string;
  keyCacheSize?: number;
}

/** An admin change as published on the changes channel. */
interface ChangeMessage {
  id?: number;
  hashes?: string[] | Record<string, never>;
}

/**
 * The ledger on Redis, shared by any number of gate instances: admission and debit are one Lua
 * script (lua/admit.ts), settlement another (lua/settle.ts); key records are cached here and
 * dropped when any instance publishes a change; each instance holds a lease that live instances
 * watch, refunding the calls of one that died. See docs/ledger.md.
 */
export class RedisLedger implements Ledger {
  readonly kind = 'redis' as const;
  readonly location: string;
  readonly instanceId: string;
  toolStatsRow: (tool: string) => string = (tool) => tool;
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #keys: KeySpace;
  readonly #scripts: LedgerScripts;
  readonly #reports: RedisReports;
  readonly #settler: Settler;
  readonly #cache: RecordCache;
  /** The rev each record handed out was read at. */
  readonly #revs = new WeakMap<KeyRecord, string>();
  readonly #leaseMs: number;
  readonly #listeners = new Set<() => void>();
  readonly #heartbeat: NodeJS.Timeout;
  #reservations = 0;
  #failure: Error | undefined;
  #closed = false;

  constructor(parts: RedisLedgerParts) {
    this.#client = parts.client;
    this.#subscriber = parts.subscriber;
    this.#keys = parts.keys;
    this.instanceId = parts.instanceId;
    this.location = parts.location;
    this.#leaseMs = parts.leaseMs;
    this.#cache = new RecordCache(parts.keyCacheSize ?? KEY_CACHE_SIZE);
    this.#scripts = defineScripts(this.#client, this.#keys.tag);
    this.#reports = new RedisReports(this.#client, this.#keys, this.#scripts, (command) => this.#call(command));
    // The settler's callers (settle below) name Redis in what they throw; its own retries need no wrapping.
    this.#settler = new Settler((argv) => this.#send(this.#scripts.settle(...argv)), () => this.#changed());
    this.#watchConnection();
    this.#subscriber.on('message', (channel: string, message: string) => this.#invalidate(channel, message));
    this.#subscriber.on('ready', () => this.#cache.clear());
    this.#heartbeat = setInterval(() => void this.#lease(REAP_BUDGET).catch(() => {}), Math.max(10, Math.floor(this.#leaseMs / 3))).unref();
  }

  /** Starts listening for admin changes and takes this instance's lease. */
  async start(): Promise<void> {
    await this.#subscriber.subscribe(this.#keys.changes);
    await this.#lease(0);
  }

  get failure(): Error | undefined {
    return this.#failure;
  }

  /** How many key records are in memory now. */
  get cachedKeys(): number {
    return this.#cache.size;
  }

  async findByHash(hash: string): Promise<KeyRecord | undefined> {
    return (this.#cache.byHash(hash) ?? (await this.#read('hash', hash)))?.record;
  }

  async findById(id: number): Promise<KeyRecord | undefined> {
    return (await this.#read('id', String(id)))?.record;
  }

  async admit(policy: PolicyEngine, caller: Caller, calls: readonly CallRequest[], now: number): Promise<Admission> {
    let current = caller;
    for (let attempt = 0; ; attempt++) {
      const { record } = current;
      if (!record || calls.length === 0 || policy.checkKey(current, now)) return this.#decideHere(policy, current, calls, now);
      const reservationId = `${this.instanceId}:${++this.#reservations}`;
      const argv = admitArguments(policy, record, this.#revs.get(record) ?? '', this.instanceId, reservationId, this.#leaseMs, calls, this.toolStatsRow);
      let reply: ReturnType<typeof parseAdmitReply>;
      try {
        reply = parseAdmitReply(await this.#call(this.#scripts.admit(...argv)));
      } catch (error) {
        // The admission may still arrive and debit: it is cancelled, and nothing is served.
        this.#settler.cancel(reservationId, calls.length);
        throw this.#unavailable(error);
      }
      if (reply.outcome === 'cancelled') throw new LedgerUnavailableError(`Redis at ${this.location} had reservation ${reservationId} cancelled already`);
      if (reply.outcome === 'stale' || reply.outcome === 'missing') {
        if (attempt >= STALE_RETRIES) throw new LedgerUnavailableError(`the key ${record.id} changed during ${STALE_RETRIES} admissions in a row; try again`);
        const fresh = reply.outcome === 'missing' ? undefined : await this.#read('id', String(record.id));
        // A key rotated meanwhile no longer answers to the hash the caller presented.
        current = { ...current, record: fresh?.record.keyHash === record.keyHash ? fresh.record : undefined };
        continue;
      }
      const before = recordWithBalance(record, reply.balance);
      const decision = decideOnSnapshot(policy, current, calls, before, reply);
      if (!agrees(decision, reply)) {
        if (reply.outcome === 'ok') this.#settler.cancel(reservationId, calls.length);
        throw new Error(`the Redis admission (${reply.outcome} ${reply.reason}) and the policy (${decision.allAllowed ? 'allowed' : decision.reason}) disagree on key ${record.id}`);
      }
      this.#changed();
      if (reply.outcome !== 'ok') {
        this.#refreshBalance(record, before);
        return { decision: { ...decision, record: before }, reservation: undefined };
      }
      const after = structuredClone(before);
      applyCharge(after, decision.totalCredits, calls.length, reply.now);
      this.#refreshBalance(record, after);
      policy.consume(decision.allAllowed ? decision.buckets : []);
      const charges = decision.allAllowed ? decision.items : [];
      const reservation: Reservation = { id: reservationId, record: after, at: reply.now, charges };
      return { decision: { ...decision, record: after }, reservation };
    }
  }

  async settle(reservation: Reservation, charge: Charge, refundReason: string | null, _now: number): Promise<void> {
    // Told apart by identity: the equal charges of a batch are settled each once.
    const index = reservation.charges.indexOf(charge);
    if (index < 0) throw new TypeError(`the charge for "${charge.tool}" is not one of reservation ${reservation.id}'s`);
    const keep = refundReason === null;
    let status: Awaited<ReturnType<Settler['settle']>>;
    try {
      status = await this.#settler.settle({ reservationId: reservation.id, index: index + 1, action: keep ? 'keep' : 'refund', reason: refundReason ?? '' });
    } catch (error) {
      throw this.#unavailable(error);
    }
    if (keep && status !== 'kept') {
      throw new LedgerUnavailableError(`the charge could not be kept: Redis at ${this.location} has it ${status} (this instance's lease ran out, or the admission was cancelled)`);
    }
    if (!keep && status === 'kept') throw new Error(`the charge for "${charge.tool}" of reservation ${reservation.id} was kept already; a kept charge is final`);
  }

  recordRefusal(record: KeyRecord, tool: string, reason: string, status: 'denied' | 'shadow', _now: number): void {
    this.#call(this.#scripts.refusal(String(record.id), tool, reason, status, this.toolStatsRow(tool))).then(
      () => this.#changed(),
      () => {},
    );
  }

  /** Runs the reaper now (any instance whose lease ran out); returns how many calls it refunded. */
  async recoverInterrupted(_now: number): Promise<number> {
    let total = 0;
    for (;;) {
      const refunded = await this.#lease(REAP_BUDGET);
      total += refunded;
      if (refunded === 0) return total;
    }
  }

  async insert(record: Omit<KeyRecord, 'id'>): Promise<KeyRecord> {
    const reply = (await this.#call(this.#scripts.insertKeys('one', JSON.stringify(recordFields(record))))) as string[];
    if (reply[0] !== 'ok') throw new Error(takenMessage(reply[1]));
    this.#changed();
    return { ...structuredClone(record), id: Number(reply[1]) };
  }

  async insertMissing(records: readonly Omit<KeyRecord, 'id'>[]): Promise<number> {
    if (records.length === 0) return 0;
    const reply = (await this.#call(this.#scripts.insertKeys('missing', ...records.map((record) => JSON.stringify(recordFields(record)))))) as string[];
    const inserted = Number(reply[1]);
    if (inserted > 0) this.#changed();
    return inserted;
  }

  async update(id: number, change: (draft: KeyRecord) => void): Promise<KeyRecord | undefined> {
    const stored = await this.#read('id', String(id));
    if (!stored) return undefined;
    const draft = structuredClone(stored.record);
    change(draft);
    const diff = keyDiff(stored.record, draft);
    if (!diff) return stored.record;
    const reply = (await this.#call(this.#scripts.updateKey(String(id), JSON.stringify(diff)))) as [string, string[] | string];
    if (reply[0] === 'missing') return undefined;
    if (reply[0] !== 'ok') throw new Error(takenMessage(reply[1] as string));
    this.#cache.forget(id, [stored.record.keyHash]);
    const updated = this.#remember(storedKey(id, pairs(reply[1] as string[])));
    this.#changed();
    return updated.record;
  }

  listKeys(query: KeyQuery): Promise<KeyRecord[]> {
    return this.#reports.listKeys(query);
  }

  countKeys(query: KeyQuery): Promise<number> {
    return this.#reports.countKeys(query);
  }

  namespaces(): Promise<NamespaceSummary[]> {
    return this.#reports.namespaces();
  }

  keyTotals(namespace?: string): Promise<KeyTotals> {
    return this.#reports.keyTotals(namespace);
  }

  usage(query: UsageQuery): Promise<UsageEvent[]> {
    return this.#reports.usage(query);
  }

  toolStats(): Promise<ReadonlyMap<string, ToolStats>> {
    return this.#reports.toolStats();
  }

  denyReasons(namespace?: string): Promise<Map<string, number>> {
    return this.#reports.denyReasons(namespace);
  }

  firstEventIdAtOrAfter(ms: number): Promise<number> {
    return this.#reports.firstEventIdAtOrAfter(ms);
  }

  deleteOldestEvents(beforeId: number, limit: number): Promise<number> {
    return this.#reports.deleteOldestEvents(beforeId, limit);
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tries once more to send the refunds still owed (timed-out keeps and admissions), then lets go of Redis. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    if (this.#settler.pendingRepairs > 0 && this.#client.status === 'ready') await this.#settler.retryRepairs();
    this.#settler.stop();
    await Promise.allSettled([quit(this.#client), quit(this.#subscriber)]);
  }

  /** Refunds not confirmed by Redis yet (they are retried every second). */
  get pendingRefunds(): number {
    return this.#settler.pendingRepairs;
  }

  /** Renews this instance's lease and reaps up to `budget` reservations of dead instances; returns the calls refunded. */
  async #lease(budget: number): Promise<number> {
    const refunded = Number(await this.#call(this.#scripts.lease(this.instanceId, String(this.#leaseMs), String(budget))));
    if (refunded > 0) this.#changed();
    return refunded;
  }

  /** A refusal decided before any Redis state was needed: key checks, or no calls. */
  #decideHere(policy: PolicyEngine, caller: Caller, calls: readonly CallRequest[], now: number): Admission {
    const decision = policy.evaluateBatch(caller, calls, now);
    if (!decision.allAllowed) {
      if (caller.record) this.recordRefusal(caller.record, calls[decision.failedIndex]?.tool ?? '', decision.reason, 'denied', now);
    } else if (decision.shadowDenial && caller.record) {
      this.recordRefusal(caller.record, calls[decision.shadowDenial.failedIndex]?.tool ?? '', decision.shadowDenial.reason, 'shadow', now);
    }
    return { decision, reservation: undefined };
  }

  async #read(by: 'hash' | 'id', value: string): Promise<CachedKey | undefined> {
    const reply = (await this.#call(this.#scripts.findKey(by, value))) as [string, string[]] | [];
    if (reply.length === 0) return undefined;
    return this.#remember(storedKey(Number(reply[0]), pairs(reply[1])));
  }

  #remember(stored: StoredKey): CachedKey {
    const cached = { record: stored.record, rev: stored.rev };
    this.#revs.set(stored.record, stored.rev);
    this.#cache.remember(cached);
    return cached;
  }

  /** Brings the cached record's balance to what Redis just returned (its other fields are covered by `rev`). */
  #refreshBalance(record: KeyRecord, balance: KeyRecord): void {
    const cached = this.#cache.byId(record.id);
    for (const target of cached && cached.record !== record ? [record, cached.record] : [record]) {
      target.credits = balance.credits;
      target.totalSpent = balance.totalSpent;
      target.totalCalls = balance.totalCalls;
      target.lastUsedAt = balance.lastUsedAt;
      target.usage = { ...balance.usage };
    }
  }

  #invalidate(channel: string, message: string): void {
    if (channel !== this.#keys.changes) return;
    let change: ChangeMessage;
    try {
      change = JSON.parse(message) as ChangeMessage;
    } catch {
      this.#cache.clear();
      return;
    }
    this.#cache.forget(change.id, Array.isArray(change.hashes) ? change.hashes : []);
    this.#changed();
  }

  /**
   * Every command of the ledger goes through here: whatever goes wrong with Redis reaches the caller
   * as a `LedgerUnavailableError` naming Redis and its address (the gate then answers 503 or a
   * JSON-RPC error, never an internal error).
   */
  async #call<T>(command: Promise<T>): Promise<T> {
    try {
      return await this.#send(command);
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  /** A Redis command as ioredis answers it; an answer shows Redis is back if a timeout had marked it down. */
  async #send<T>(command: Promise<T>): Promise<T> {
    try {
      const reply = await command;
      if (this.#failure && this.#client.status === 'ready') this.#recovered();
      return reply;
    } catch (error) {
      if (error instanceof Error && /timed out/i.test(error.message)) this.#fail(new Error(`Redis at ${this.location} does not answer: ${error.message}`));
      throw error;
    }
  }

  #watchConnection(): void {
    const client = this.#client;
    client.on('ready', () => this.#recovered());
    client.on('error', (error: Error) => {
      if (client.status !== 'ready') this.#fail(new Error(`Redis at ${this.location} is unreachable: ${error.message}`));
    });
    client.on('close', () => {
      if (!this.#closed) this.#fail(new Error(`the connection to Redis at ${this.location} was lost; reconnecting`));
    });
    // The subscriber's own errors are the same outage: handled so that ioredis does not print them.
    this.#subscriber.on('error', () => {});
  }

  #fail(error: Error): void {
    const first = this.#failure === undefined;
    this.#failure = error;
    if (first) this.#changed();
  }

  #recovered(): void {
    if (this.#failure === undefined) return;
    this.#failure = undefined;
    void this.#settler.retryRepairs();
    this.#changed();
  }

  #unavailable(error: unknown): LedgerUnavailableError {
    if (error instanceof LedgerUnavailableError) return error;
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof ReplyError) return new LedgerUnavailableError(`Redis at ${this.location} refused a command: ${message}`);
    return new LedgerUnavailableError(this.#failure?.message ?? `Redis at ${this.location} could not be reached: ${message}`);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }
}

function takenMessage(why: string | undefined): string {
  return why === 'retired'
    ? 'this API key was retired by a rotation and can never be stored again'
    : 'a key with this API key hash is already stored';
}

async function quit(client: RedisClient): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
