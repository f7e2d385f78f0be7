import { applyCharge, applyRefund } from '../gate/accounting.ts';
import type { KeyRecord } from '../gate/types.ts';
import { LedgerUnavailableError, type Charge, type Reservation } from './contract.ts';
import { KeyCache } from './keyCache.ts';
import type { BalanceRow, EventStatus, KeyQuery, LedgerBatch, Store, ToolStats, UsageEvent } from './types.ts';
import { directWriter, type BatchWriter } from './writer.ts';

type Outcome = 'kept' | 'refunded';

/** A reservation made in this process's memory: it is debited at once, durable when `durable` settles. */
export interface LocalReservation extends Reservation {
  /** Settles when the charges are on disk; the calls may be forwarded only then. */
  readonly durable: Promise<void>;
  /** How each charge (by index) was settled, once it is. */
  readonly outcomes: (Outcome | undefined)[];
}

/** Credits and calls admitted for a key but not settled yet. */
interface InFlight {
  credits: number;
  calls: number;
}

/** A charge kept this turn: if the turn's write fails, its caller is not answered, so it is refunded. */
interface Kept {
  reservation: LocalReservation;
  charge: Charge;
  event: UsageEvent;
}

const NOTHING_IN_FLIGHT: InFlight = { credits: 0, calls: 0 };
const TOOL_STATS_EVERY_MS = 1000;
/** How soon a ledger that could not write tries again. */
const RETRY_WRITE_MS = 1000;
const UNRECORDED_REASON = 'the gate could not record the outcome, so the answer was withheld';
/** Key records kept in memory beyond those in use: enough for every active client of a busy gate. */
export const KEY_CACHE_SIZE = 10_000;

/**
 * The SQLite store's ledger, synchronous: the in-memory balances every admission decision reads, and the write-behind
 * that makes them durable. The changes of one event-loop turn are written as one batch at the end
 * of the turn (to a journal, or straight to the store), or at once when no other call is in flight;
 * callers await the promise they are given before acting on a change.
 *
 * A reservation is written as the key's debited balance plus the amount still in flight; settling
 * clears the in-flight amount and writes the call's usage event. A gate that dies in between
 * leaves an in-flight amount behind, and the next start refunds it: those callers never got an
 * answer. One process owns a store; the SQLite store's exclusive lock enforces it.
 *
 * A turn whose write fails is undone where its callers hear of the failure: its reservations are
 * given back (those calls are not made) and the charges it kept are refunded (those answers are
 * withheld); the rest of it is written with a later turn. Until a write succeeds again, the ledger
 * refuses new charges (`failure` says why) and retries every second.
 */
export class InProcessLedger {
  readonly store: Store;
  /** The per-tool stats row a tool's calls count under: the engine keeps rows to tools that exist. */
  toolStatsRow: (tool: string) => string = (tool) => tool;
  readonly #writer: BatchWriter;
  readonly #keys: KeyCache;
  readonly #inflight = new Map<KeyRecord, InFlight>();
  readonly #toolStats: Map<string, ToolStats>;
  #dirtyKeys = new Set<KeyRecord>();
  #dirtyTools = new Set<string>();
  #inserts: UsageEvent[] = [];
  /** This turn's reservations and kept charges: what to undo if its write fails. */
  #turnReservations: LocalReservation[] = [];
  #reservations = 0;
  #turnKept: Kept[] = [];
  /** What everyone who changed something this turn waits for: the turn's batch on disk. */
  #turn: PromiseWithResolvers<void> | undefined;
  #scheduled = false;
  /** Calls admitted and not settled yet, over all keys. */
  #callsInFlight = 0;
  #nextEventId: number;
  #lastEventAt: number;
  #toolStatsWrittenAt = 0;
  #failure: Error | undefined;
  #retry: NodeJS.Timeout | undefined;
  readonly #listeners = new Set<() => void>();
  readonly #commitAtEndOfTurn = () => this.#commitTurn(false);

  /** `writer` defaults to committing each turn straight to `store`; `keyCacheSize` records stay cached when not in use. */
  constructor(store: Store, writer: BatchWriter = directWriter(store), keyCacheSize = KEY_CACHE_SIZE) {
    this.store = store;
    this.#writer = writer;
    this.#keys = new KeyCache(keyCacheSize);
    writer.onFailure = (error) => this.#fail(error);
    writer.onApplied = () => this.#trimKeys();
    this.#toolStats = store.toolStats();
    this.#nextEventId = store.nextEventId();
    this.#lastEventAt = store.lastEventAt();
  }

  /** How many key records are in memory now. */
  get cachedKeys(): number {
    return this.#keys.size;
  }

  /** Why the ledger refuses charges until a write succeeds again, if it does. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  findByHash(hash: string): KeyRecord | undefined {
    const cached = this.#keys.byHash(hash);
    if (cached) return cached;
    const record = this.store.findKeyByHash(hash);
    if (record) this.#remember(record);
    return record;
  }

  findById(id: number): KeyRecord | undefined {
    const cached = this.#keys.byId(id);
    if (cached) return cached;
    const record = this.store.findKeyById(id);
    if (record) this.#remember(record);
    return record;
  }

  /** Debits admitted calls from the key at once, so that no later decision can spend the same credits. */
  reserve(record: KeyRecord, charges: readonly Charge[], now: number): LocalReservation {
    if (this.#failure) throw new LedgerUnavailableError(`the ledger cannot be written: ${this.#failure.message}`);
    const total = charges.reduce((sum, charge) => sum + charge.credits, 0);
    applyCharge(record, total, charges.length, now);
    this.#moveInFlight(record, total, charges.length);
    const reservation: LocalReservation = {
      id: String(++this.#reservations),
      record,
      at: now,
      charges: [...charges],
      durable: this.#turnCommitted(),
      outcomes: new Array<Outcome | undefined>(charges.length),
    };
    this.#turnReservations.push(reservation);
    this.#commitSoon(this.#callsInFlight === charges.length);
    return reservation;
  }

  /**
   * Makes one charge final: kept, or given back with the reason. Resolves once that is on disk. A
   * charge is settled once: the same outcome again changes nothing, the other one is refused.
   */
  settle(reservation: LocalReservation, charge: Charge, refundReason: string | null, now: number): Promise<void> {
    const index = reservation.charges.indexOf(charge);
    if (index < 0) return Promise.reject(new TypeError('the charge is not one of this reservation\'s'));
    const outcome: Outcome = refundReason === null ? 'kept' : 'refunded';
    const settled = reservation.outcomes[index];
    if (settled === outcome) return this.#whenCommitted(this.#callsInFlight === 0);
    if (settled !== undefined) return Promise.reject(new Error(`the charge was ${settled} already, so it cannot be ${outcome} now`));
    reservation.outcomes[index] = outcome;
    const { record } = reservation;
    this.#moveInFlight(record, -charge.credits, -1);
    if (refundReason === null) {
      this.#turnKept.push({ reservation, charge, event: this.#event(record, charge.tool, charge.credits, 'charged', null, now) });
      this.#bumpTool(charge.tool, 1, charge.credits, 0);
    } else {
      applyRefund(record, charge.credits, 1, reservation.at, now);
      this.#event(record, charge.tool, 0, 'refunded', refundReason, now);
    }
    return this.#whenCommitted(this.#callsInFlight === 0);
  }

  /** Records a call that was refused, or in shadow mode would have been. Nothing waits for it. */
  recordRefusal(record: KeyRecord | undefined, tool: string, reason: string, status: 'denied' | 'shadow', now: number): void {
    this.#event(record, tool, 0, status, reason, now);
    if (status === 'denied') this.#bumpTool(tool, 0, 0, 1);
    this.#schedule();
  }

  /**
   * Refunds what a previous process admitted but never settled: it stopped (crashed or was killed)
   * between forwarding calls and answering them. Returns how many calls that was.
   */
  recoverInterrupted(now: number): number {
    let calls = 0;
    for (const { id, inflightCredits, inflightCalls } of this.store.keysWithCallsInFlight()) {
      const record = this.findById(id)!;
      applyRefund(record, inflightCredits, inflightCalls, record.lastUsedAt ?? now, now);
      this.#dirtyKeys.add(record);
      this.#event(record, '', 0, 'interrupted', `${inflightCalls} call(s) worth ${inflightCredits} credits were in flight when the gate stopped; refunded`, now);
      calls += inflightCalls;
    }
    this.flush();
    return calls;
  }

  /** Applies an admin change to a key and writes it at once, after anything still pending. Returns the live record. */
  update(record: KeyRecord, change: (record: KeyRecord) => void): KeyRecord {
    this.flush();
    // Writing everything out may have let the cache drop the record (it was idle): it is the live one again.
    const live = this.#keys.peek(record.id) ?? record;
    const draft = structuredClone(live);
    change(draft);
    this.store.writeKey(draft);
    Object.assign(live, draft);
    this.#keys.remember(live);
    this.#changed();
    return live;
  }

  /** Stores a new key. It is cached when first used, not now: bulk creation must not fill memory. */
  insert(record: Omit<KeyRecord, 'id'>): KeyRecord {
    this.flush();
    const inserted = this.store.insertKey(record);
    this.#changed();
    return inserted;
  }

  /**
   * Stores, in one transaction, the keys whose hash is not stored yet (nor retired by a rotation);
   * stored keys are left exactly as they are, and none is cached (bulk imports must not fill memory). Returns how many were added.
   */
  insertMissing(records: readonly Omit<KeyRecord, 'id'>[]): number {
    this.flush();
    const inserted = this.store.transaction(() => {
      let count = 0;
      for (const record of records) {
        if (this.store.findKeyByHash(record.keyHash) || this.store.hashRetired(record.keyHash)) continue;
        this.store.insertKey(record);
        count++;
      }
      return count;
    });
    if (inserted > 0) this.#changed();
    return inserted;
  }

  /**
   * Keys as they stand now, calls in flight included, without waiting for pending writes: the
   * stored rows, with the live record of every key that calls have touched.
   */
  liveKeys(query: KeyQuery): KeyRecord[] {
    return this.store.listKeys(query).map((stored) => this.#keys.peek(stored.id) ?? stored);
  }

  /** Calls `listener` after every write: calls admitted, settled or refused, and admin changes. Returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Per-tool calls, credits and denials, as the ledger has them now. */
  toolStats(): ReadonlyMap<string, ToolStats> {
    return this.#toolStats;
  }

  /**
   * Makes everything recorded so far durable and visible to the store's queries (for admin reads and
   * changes); throws `LedgerUnavailableError` if it cannot. Once it succeeds, the ledger takes charges again.
   */
  flush(): void {
    if (!this.#commitTurn(false)) throw this.#unavailable();
    this.#sync();
    this.#recovered();
    this.#trimKeys();
  }

  /** Writes what is pending and closes the store; the files are closed even if that write fails. */
  close(): void {
    clearTimeout(this.#retry);
    try {
      if (!this.#commitTurn(true)) throw this.#unavailable();
      this.#sync();
    } finally {
      try {
        this.#writer.close();
      } finally {
        this.store.close();
      }
    }
  }

  /**
   * Writes this turn's changes as one batch, then tells everyone waiting. Per-tool totals go along
   * at most once a second (or when `withToolStats`): after a crash they are rebuilt from the events.
   * False if the write failed: the turn is undone and its callers are told.
   */
  #commitTurn(withToolStats: boolean): boolean {
    this.#scheduled = false;
    const turn = this.#turn;
    const reservations = this.#turnReservations;
    const kept = this.#turnKept;
    this.#turn = undefined;
    this.#turnReservations = [];
    this.#turnKept = [];
    const writeToolStats = this.#dirtyTools.size > 0 && (withToolStats || Date.now() - this.#toolStatsWrittenAt >= TOOL_STATS_EVERY_MS);
    if (this.#dirtyKeys.size > 0 || this.#inserts.length > 0 || writeToolStats) {
      const batch: LedgerBatch = { balances: [...this.#dirtyKeys].map((record) => this.#balanceOf(record)), inserts: this.#inserts };
      const dirtyKeys = this.#dirtyKeys;
      const dirtyTools = this.#dirtyTools;
      if (writeToolStats) {
        const stats: Record<string, ToolStats> = {};
        for (const tool of this.#dirtyTools) stats[tool] = { ...this.#toolStats.get(tool)! };
        batch.toolStats = { stats, throughEventId: this.#nextEventId - 1 };
        this.#dirtyTools = new Set();
        this.#toolStatsWrittenAt = Date.now();
      }
      this.#dirtyKeys = new Set();
      this.#inserts = [];
      try {
        this.#writer.write(batch);
      } catch (error) {
        // Nothing of the batch is written: it goes with the next write, undone where its callers hear of it.
        for (const record of dirtyKeys) this.#dirtyKeys.add(record);
        for (const tool of dirtyTools) this.#dirtyTools.add(tool);
        this.#inserts = batch.inserts;
        this.#undo(reservations, kept);
        turn?.reject(this.#fail(error));
        return false;
      }
      this.#changed();
    }
    turn?.resolve();
    return true;
  }

  /** Gives back reservations that are not on disk, and refunds kept charges whose callers will not be answered. */
  #undo(reservations: readonly LocalReservation[], kept: readonly Kept[]): void {
    // As of the key's latest use: an earlier time would start its quota day afresh.
    const latest = (record: KeyRecord, at: number) => Math.max(at, record.lastUsedAt ?? at);
    for (const reservation of reservations) {
      const { record, at, charges } = reservation;
      const total = charges.reduce((sum, charge) => sum + charge.credits, 0);
      applyRefund(record, total, charges.length, at, latest(record, at));
      this.#moveInFlight(record, -total, -charges.length);
      reservation.outcomes.fill('refunded');
    }
    for (const { reservation, charge, event } of kept) {
      reservation.outcomes[reservation.charges.indexOf(charge)] = 'refunded';
      applyRefund(reservation.record, charge.credits, 1, reservation.at, latest(reservation.record, event.at));
      this.#bumpTool(charge.tool, -1, -charge.credits, 0);
      Object.assign(event, { credits: 0, status: 'refunded', reason: UNRECORDED_REASON } satisfies Partial<UsageEvent>);
    }
    this.#changed();
  }

  #sync(): void {
    try {
      this.#writer.sync();
    } catch (error) {
      throw this.#fail(error);
    }
  }

  /** Refuses charges from now on, with the reason, until a write succeeds again (tried every second). */
  #fail(error: unknown): LedgerUnavailableError {
    this.#failure = error instanceof Error ? error : new Error(String(error));
    this.#retry ??= setTimeout(() => this.#retryWrites(), RETRY_WRITE_MS).unref();
    return this.#unavailable();
  }

  #unavailable(): LedgerUnavailableError {
    return new LedgerUnavailableError(`the ledger cannot be written: ${this.#failure?.message ?? 'unknown error'}`);
  }

  #retryWrites(): void {
    this.#retry = undefined;
    try {
      this.flush();
    } catch {
      // Still failing: `#fail` has set the next try.
    }
  }

  #recovered(): void {
    if (this.#failure === undefined) return;
    this.#failure = undefined;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#changed();
  }

  #balanceOf(record: KeyRecord): BalanceRow {
    const inflight = this.#inflight.get(record) ?? NOTHING_IN_FLIGHT;
    return {
      id: record.id,
      credits: record.credits,
      totalSpent: record.totalSpent,
      totalCalls: record.totalCalls,
      lastUsedAt: record.lastUsedAt,
      usage: { ...record.usage },
      inflightCredits: inflight.credits,
      inflightCalls: inflight.calls,
    };
  }

  /** A key's entry stays while its record is cached: dropping and re-adding it per call churns the map. */
  #moveInFlight(record: KeyRecord, credits: number, calls: number): void {
    let inflight = this.#inflight.get(record);
    if (!inflight) this.#inflight.set(record, (inflight = { credits: 0, calls: 0 }));
    inflight.credits += credits;
    inflight.calls += calls;
    this.#callsInFlight += calls;
    this.#dirtyKeys.add(record);
  }

  #event(record: KeyRecord | undefined, tool: string, credits: number, status: EventStatus, reason: string | null, now: number): UsageEvent {
    // Event times never go back, even if the clock does: usage queries by time rely on it.
    this.#lastEventAt = Math.max(this.#lastEventAt, now);
    const event: UsageEvent = {
      id: this.#nextEventId++,
      at: this.#lastEventAt,
      keyId: record?.id ?? null,
      keyPrefix: record?.keyPrefix ?? '',
      keyName: record?.name ?? '',
      namespace: record?.namespace ?? 'default',
      tool,
      credits,
      status,
      reason,
    };
    this.#inserts.push(event);
    return event;
  }

  #bumpTool(name: string, calls: number, credits: number, denied: number): void {
    const tool = this.toolStatsRow(name);
    let stats = this.#toolStats.get(tool);
    if (!stats) {
      stats = { calls: 0, credits: 0, denied: 0 };
      this.#toolStats.set(tool, stats);
    }
    stats.calls += calls;
    stats.credits += credits;
    stats.denied += denied;
    this.#dirtyTools.add(tool);
  }

  /**
   * The promise of the turn's commit. Writing at the end of the turn lets every call of the turn share
   * one write; with no other call in flight there is nobody to share it with, so it is written now.
   */
  #whenCommitted(alone: boolean): Promise<void> {
    const promise = this.#turnCommitted();
    this.#commitSoon(alone);
    return promise;
  }

  #turnCommitted(): Promise<void> {
    this.#turn ??= Promise.withResolvers<void>();
    return this.#turn.promise;
  }

  #commitSoon(alone: boolean): void {
    if (alone) this.#commitTurn(false);
    else this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#commitAtEndOfTurn);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  #remember(record: KeyRecord): void {
    // Lookups alone write nothing, so nothing else would trim a cache that only they fill.
    if (this.#keys.size >= 2 * this.#keys.capacity && !this.#failure) {
      try {
        this.flush();
      } catch (error) {
        // The ledger now refuses charges and says why; a lookup still finds its key.
        if (!(error instanceof LedgerUnavailableError)) throw error;
      }
    }
    this.#keys.remember(record);
  }

  /**
   * Forgets the least recently used records beyond the cache's size, once the store holds all that
   * was written: a record read again from the store is then exactly the one dropped. Records changed
   * this turn (not written yet) or with calls in flight (reservations hold them) stay.
   */
  #trimKeys(): void {
    // After a failed write the store may lack changes the records have: keep them all.
    if (this.#keys.size <= this.#keys.capacity || this.#failure) return;
    this.#keys.trim(
      (record) => {
        const inflight = this.#inflight.get(record);
        return this.#dirtyKeys.has(record) || (inflight !== undefined && (inflight.calls !== 0 || inflight.credits !== 0));
      },
      (record) => this.#inflight.delete(record),
    );
  }
}
