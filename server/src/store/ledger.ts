import { applyCharge, applyRefund } from '../gate/accounting.ts';
import type { KeyRecord } from '../gate/types.ts';
import type { EventStatus, Settlement, Store, ToolStats, UsageEvent } from './types.ts';

/** One admitted call: its pending event and what it cost. */
export interface Charge {
  eventId: number;
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

export interface ChargeItem {
  tool: string;
  credits: number;
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

export class LedgerUnavailableError extends Error {}

/**
 * The credits ledger: the in-memory balances every admission decision reads, and the write-behind
 * that makes them durable. Every change of one event-loop turn is committed in one transaction at
 * the end of the turn; callers await the promise they are given before acting on a change.
 * One process owns a store; the SQLite store's exclusive lock enforces it.
 */
export class Ledger {
  readonly store: Store;
  readonly #byHash = new Map<string, KeyRecord>();
  readonly #byId = new Map<number, KeyRecord>();
  readonly #toolStats: Map<string, ToolStats>;
  #dirtyKeys = new Set<KeyRecord>();
  #dirtyTools = new Set<string>();
  #inserts: UsageEvent[] = [];
  #settlements: Settlement[] = [];
  #waiters: Waiter[] = [];
  #scheduled = false;
  #nextEventId: number;
  #failure: Error | undefined;
  readonly #flushAtEndOfTurn = () => this.flush();

  constructor(store: Store) {
    this.store = store;
    this.#toolStats = store.toolStats();
    this.#nextEventId = store.nextEventId();
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

  /**
   * Debits admitted calls from the key at once (so no later decision can spend the same credits)
   * and records each as a pending event.
   */
  reserve(record: KeyRecord, items: readonly ChargeItem[], now: number): Reservation {
    if (this.#failure) throw new LedgerUnavailableError(`the ledger cannot be written: ${this.#failure.message}`);
    const total = items.reduce((sum, item) => sum + item.credits, 0);
    applyCharge(record, total, items.length, now);
    this.#dirtyKeys.add(record);
    const charges = items.map((item) => {
      const event = this.#event(record, item.tool, item.credits, 'pending', null, now);
      this.#bumpTool(item.tool, 1, item.credits, 0);
      return { eventId: event.id, tool: item.tool, credits: item.credits };
    });
    return { record, at: now, charges, durable: this.#whenCommitted() };
  }

  /** Makes one charge final: kept, or given back with the reason. */
  settle(reservation: Reservation, charge: Charge, refundReason: string | null, now: number): Promise<void> {
    if (refundReason === null) {
      this.#settlements.push({ eventId: charge.eventId, status: 'charged', credits: charge.credits, reason: null });
    } else {
      applyRefund(reservation.record, charge.credits, 1, reservation.at, now);
      this.#dirtyKeys.add(reservation.record);
      this.#bumpTool(charge.tool, -1, -charge.credits, 0);
      this.#settlements.push({ eventId: charge.eventId, status: 'refunded', credits: 0, reason: refundReason });
    }
    return this.#whenCommitted();
  }

  /** Records a call that was refused, or in shadow mode would have been. Nothing waits for it. */
  recordRefusal(record: KeyRecord | undefined, tool: string, reason: string, status: 'denied' | 'shadow', now: number): void {
    this.#event(record, tool, 0, status, reason, now);
    this.#bumpTool(tool, 0, 0, 1);
    this.#schedule();
  }

  /**
   * Refunds the calls a previous process admitted but never settled: it stopped (crashed or was
   * killed) between forwarding them and answering. Their callers never got an answer.
   */
  recoverInterrupted(now: number): number {
    const pending = this.store.pendingEvents();
    for (const event of pending) {
      const record = event.keyId === null ? undefined : this.findById(event.keyId);
      if (record) {
        applyRefund(record, event.credits, 1, event.at, now);
        this.#dirtyKeys.add(record);
      }
      this.#bumpTool(event.tool, -1, -event.credits, 0);
      this.#settlements.push({ eventId: event.id, status: 'interrupted', credits: 0, reason: 'gate stopped before the call was answered' });
    }
    this.flush();
    return pending.length;
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
    return record;
  }

  insert(record: Omit<KeyRecord, 'id'>): KeyRecord {
    this.flush();
    const stored = this.store.insertKey(record);
    this.#remember(stored);
    return stored;
  }

  /** Per-tool calls, credits and denials, as the ledger has them now. */
  toolStats(): ReadonlyMap<string, ToolStats> {
    return this.#toolStats;
  }

  /** Commits everything of this turn in one transaction. Admin reads call it to see current data. */
  flush(): void {
    this.#scheduled = false;
    const waiters = this.#waiters;
    if (this.#dirtyKeys.size === 0 && this.#inserts.length === 0 && this.#settlements.length === 0 && this.#dirtyTools.size === 0) {
      for (const waiter of waiters) waiter.resolve();
      this.#waiters = [];
      return;
    }
    const toolStats = new Map<string, ToolStats>();
    for (const tool of this.#dirtyTools) toolStats.set(tool, { ...this.#toolStats.get(tool)! });
    const batch = { keys: [...this.#dirtyKeys], inserts: this.#inserts, settlements: this.#settlements, toolStats };
    this.#dirtyKeys = new Set();
    this.#dirtyTools = new Set();
    this.#inserts = [];
    this.#settlements = [];
    this.#waiters = [];
    try {
      this.store.commit(batch);
    } catch (error) {
      this.#failure = error instanceof Error ? error : new Error(String(error));
      for (const waiter of waiters) waiter.reject(new LedgerUnavailableError(`the ledger cannot be written: ${this.#failure.message}`));
      return;
    }
    for (const waiter of waiters) waiter.resolve();
  }

  close(): void {
    this.flush();
    this.store.close();
  }

  #event(record: KeyRecord | undefined, tool: string, credits: number, status: EventStatus, reason: string | null, now: number): UsageEvent {
    const event: UsageEvent = {
      id: this.#nextEventId++,
      at: now,
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

  #bumpTool(tool: string, calls: number, credits: number, denied: number): void {
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

  #whenCommitted(): Promise<void> {
    this.#schedule();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#flushAtEndOfTurn);
  }

  #remember(record: KeyRecord): void {
    this.#byHash.set(record.keyHash, record);
    this.#byId.set(record.id, record);
  }
}
