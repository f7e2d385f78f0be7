import { applyCharge, applyRefund } from '../gate/accounting.ts';
import type { KeyRecord } from '../gate/types.ts';
import type { BalanceRow, EventStatus, KeyQuery, LedgerBatch, Store, ToolStats, UsageEvent } from './types.ts';
import { directWriter, type BatchWriter } from './writer.ts';

/** One admitted call and what it cost. */
export interface Charge {
  tool: string;
  credits: number;
}

export interface Reservation {
  record: KeyRecord;
  at: number;
  charges: Charge[];
  /** Settles when the charges are on disk; the calls may be forwarded only then. */
  durable: Promise<void>;
}

/** Credits and calls admitted for a key but not settled yet. */
interface InFlight {
  credits: number;
  calls: number;
}

export class LedgerUnavailableError extends Error {}

const NOTHING_IN_FLIGHT: InFlight = { credits: 0, calls: 0 };
const TOOL_STATS_EVERY_MS = 1000;

/**
 * The credits ledger: the in-memory balances every admission decision reads, and the write-behind
 * that makes them durable. The changes of one event-loop turn are written as one batch at the end
 * of the turn (to a journal, or straight to the store), or at once when no other call is in flight;
 * callers await the promise they are given before acting on a change.
 *
 * A reservation is written as the key's debited balance plus the amount still in flight; settling
 * clears the in-flight amount and writes the call's usage event. A gate that dies in between
 * leaves an in-flight amount behind, and the next start refunds it: those callers never got an
 * answer. One process owns a store; the SQLite store's exclusive lock enforces it.
 */
export class Ledger {
  readonly store: Store;
  /** The per-tool stats row a tool's calls count under: the engine keeps rows to tools that exist. */
  toolStatsRow: (tool: string) => string = (tool) => tool;
  readonly #writer: BatchWriter;
  readonly #byHash = new Map<string, KeyRecord>();
  readonly #byId = new Map<number, KeyRecord>();
  readonly #inflight = new Map<KeyRecord, InFlight>();
  readonly #toolStats: Map<string, ToolStats>;
  #dirtyKeys = new Set<KeyRecord>();
  #dirtyTools = new Set<string>();
  #inserts: UsageEvent[] = [];
  /** What everyone who changed something this turn waits for: the turn's batch on disk. */
  #turn: PromiseWithResolvers<void> | undefined;
  #scheduled = false;
  /** Calls admitted and not settled yet, over all keys. */
  #callsInFlight = 0;
  #nextEventId: number;
  #lastEventAt: number;
  #toolStatsWrittenAt = 0;
  #failure: Error | undefined;
  readonly #listeners = new Set<() => void>();
  readonly #commitAtEndOfTurn = () => this.#commitTurn(false);

  /** `writer` defaults to committing each turn straight to `store`. */
  constructor(store: Store, writer: BatchWriter = directWriter(store)) {
    this.store = store;
    this.#writer = writer;
    writer.onFailure = (error) => this.#fail(error);
    this.#toolStats = store.toolStats();
    this.#nextEventId = store.nextEventId();
    this.#lastEventAt = store.lastEventAt();
  }

  /** Why the ledger stopped accepting charges, if it did. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  findByHash(hash: string): KeyRecord | undefined {
    const cached = this.#byHash.get(hash);
    if (cached) return cached;
    const record = this.store.findKeyByHash(hash);
    if (record) this.#remember(record);
    return record;
  }

  findById(id: number): KeyRecord | undefined {
    const cached = this.#byId.get(id);
    if (cached) return cached;
    const record = this.store.findKeyById(id);
    if (record) this.#remember(record);
    return record;
  }

  /** Debits admitted calls from the key at once, so that no later decision can spend the same credits. */
  reserve(record: KeyRecord, charges: readonly Charge[], now: number): Reservation {
    if (this.#failure) throw new LedgerUnavailableError(`the ledger cannot be written: ${this.#failure.message}`);
    const total = charges.reduce((sum, charge) => sum + charge.credits, 0);
    applyCharge(record, total, charges.length, now);
    this.#moveInFlight(record, total, charges.length);
    return { record, at: now, charges: [...charges], durable: this.#whenCommitted(this.#callsInFlight === charges.length) };
  }

  /** Makes one charge final: kept, or given back with the reason. Resolves once that is on disk. */
  settle(reservation: Reservation, charge: Charge, refundReason: string | null, now: number): Promise<void> {
    const { record } = reservation;
    this.#moveInFlight(record, -charge.credits, -1);
    if (refundReason === null) {
      this.#event(record, charge.tool, charge.credits, 'charged', null, now);
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

  /** Applies an admin change to a key and writes it at once, after anything still pending. */
  update(record: KeyRecord, change: (record: KeyRecord) => void): KeyRecord {
    this.flush();
    const draft = structuredClone(record);
    change(draft);
    this.store.writeKey(draft);
    this.#byHash.delete(record.keyHash);
    Object.assign(record, draft);
    this.#byHash.set(record.keyHash, record);
    this.#changed();
    return record;
  }

  /** Stores a new key. It is cached when first used, not now: bulk creation must not fill memory. */
  insert(record: Omit<KeyRecord, 'id'>): KeyRecord {
    this.flush();
    const inserted = this.store.insertKey(record);
    this.#changed();
    return inserted;
  }

  /**
   * Stores, in one transaction, the keys whose hash is not stored yet; stored keys are left exactly
   * as they are, and none is cached (bulk imports must not fill memory). Returns how many were added.
   */
  insertMissing(records: readonly Omit<KeyRecord, 'id'>[]): number {
    this.flush();
    const inserted = this.store.transaction(() => {
      let count = 0;
      for (const record of records) {
        if (this.store.findKeyByHash(record.keyHash)) continue;
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
    return this.store.listKeys(query).map((stored) => this.#byId.get(stored.id) ?? stored);
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

  /** Makes everything recorded so far durable and visible to the store's queries (for admin reads and changes). */
  flush(): void {
    this.#commitTurn(false);
    this.#sync();
  }

  close(): void {
    this.#commitTurn(true);
    this.#sync();
    this.#writer.close();
    this.store.close();
  }

  /**
   * Writes this turn's changes as one batch, then tells everyone waiting. Per-tool totals go along
   * at most once a second (or when `withToolStats`): after a crash they are rebuilt from the events.
   */
  #commitTurn(withToolStats: boolean): void {
    this.#scheduled = false;
    const turn = this.#turn;
    this.#turn = undefined;
    const writeToolStats = this.#dirtyTools.size > 0 && (withToolStats || Date.now() - this.#toolStatsWrittenAt >= TOOL_STATS_EVERY_MS);
    if (this.#dirtyKeys.size > 0 || this.#inserts.length > 0 || writeToolStats) {
      const batch: LedgerBatch = { balances: [...this.#dirtyKeys].map((record) => this.#balanceOf(record)), inserts: this.#inserts };
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
        turn?.reject(this.#fail(error));
        return;
      }
      this.#changed();
    }
    turn?.resolve();
  }

  #sync(): void {
    try {
      this.#writer.sync();
    } catch (error) {
      throw this.#fail(error);
    }
  }

  /** Stops the ledger: from now on it refuses charges, with the reason. */
  #fail(error: unknown): LedgerUnavailableError {
    this.#failure ??= error instanceof Error ? error : new Error(String(error));
    return new LedgerUnavailableError(`the ledger cannot be written: ${this.#failure.message}`);
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

  /** A key's entry stays once made (like its cached record): dropping and re-adding it per call churns the map. */
  #moveInFlight(record: KeyRecord, credits: number, calls: number): void {
    let inflight = this.#inflight.get(record);
    if (!inflight) this.#inflight.set(record, (inflight = { credits: 0, calls: 0 }));
    inflight.credits += credits;
    inflight.calls += calls;
    this.#callsInFlight += calls;
    this.#dirtyKeys.add(record);
  }

  #event(record: KeyRecord | undefined, tool: string, credits: number, status: EventStatus, reason: string | null, now: number): void {
    // Event times never go back, even if the clock does: usage queries by time rely on it.
    this.#lastEventAt = Math.max(this.#lastEventAt, now);
    this.#inserts.push({
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
    });
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
    this.#turn ??= Promise.withResolvers<void>();
    const { promise } = this.#turn;
    if (alone) this.#commitTurn(false);
    else this.#schedule();
    return promise;
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
    this.#byHash.set(record.keyHash, record);
    this.#byId.set(record.id, record);
  }
}
