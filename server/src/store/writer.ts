import type { Journal, JournalEntry } from './journal.ts';
import type { BalanceRow, LedgerBatch, Store, ToolStats, UsageEvent } from './types.ts';

/** Where the ledger's batches go. After `write` returns, the batch survives the process dying. */
export interface BatchWriter {
  write(batch: LedgerBatch): void;
  /** Told when writing in the background failed; `write` and `sync` throw instead. */
  onFailure: ((error: Error) => void) | undefined;
  /** Told each time the store has applied everything written so far. */
  onApplied: (() => void) | undefined;
  /** Makes everything written visible to the store's queries. */
  sync(): void;
  close(): void;
}

/** Commits each batch to the store at once: for the in-memory store, where commits are cheap. */
export function directWriter(store: Store): BatchWriter {
  const writer: BatchWriter = {
    write(batch) {
      store.commit(batch);
      writer.onApplied?.();
    },
    sync: () => {},
    close: () => {},
    onFailure: undefined,
    onApplied: undefined,
  };
  return writer;
}

/** Several batches as one: the newest balance of each key, every event, the newest per-tool totals. */
export function mergeBatches(batches: readonly LedgerBatch[]): LedgerBatch {
  const balances = new Map<number, BalanceRow>();
  const inserts: UsageEvent[] = [];
  let stats: Record<string, ToolStats> | undefined;
  let throughEventId = 0;
  for (const batch of batches) {
    for (const balance of batch.balances) balances.set(balance.id, balance);
    inserts.push(...batch.inserts);
    if (batch.toolStats) {
      stats = { ...stats, ...batch.toolStats.stats };
      throughEventId = batch.toolStats.throughEventId;
    }
  }
  return { balances: [...balances.values()], inserts, ...(stats ? { toolStats: { stats, throughEventId } } : {}) };
}

/** Meta entry: the sequence number of the last journal line applied to the store. */
export const APPLIED_THROUGH = 'journal-applied-through';
const APPLY_EVERY_MS = 200;
const APPLY_AT_BATCHES = 256;

/**
 * Appends each batch to the journal (one write: cheap, and durable against a killed process) and
 * applies the journal to SQLite in larger transactions, at most 200 ms later. The apply never runs
 * inside the turn that wrote: that turn's callers are answered first, so a charge made final on
 * disk is not held back from its caller for milliseconds (a gate killed then would have kept
 * charges it never answered). At construction it replays what a previous process journaled but
 * did not apply (`recovered`, read from the journal by the caller) and starts the journal afresh.
 */
export class JournaledWriter implements BatchWriter {
  onFailure: ((error: Error) => void) | undefined;
  onApplied: (() => void) | undefined;
  readonly #store: Store;
  readonly #journal: Journal;
  #unapplied: LedgerBatch[] = [];
  #seq: number;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;

  constructor(store: Store, journal: Journal, recovered: readonly JournalEntry[]) {
    this.#store = store;
    this.#journal = journal;
    this.#seq = Number(store.getMeta(APPLIED_THROUGH) ?? 0);
    // Lines up to the applied sequence number are in the store already: a previous process applied
    // them and stopped before it emptied the journal.
    const pending = recovered.filter((entry) => entry.seq > this.#seq);
    if (pending.length > 0) {
      this.#apply(pending.map((entry) => entry.batch), pending.at(-1)!.seq);
      this.#seq = pending.at(-1)!.seq;
    }
    journal.start(store.databaseId);
  }

  write(batch: LedgerBatch): void {
    const seq = this.#seq + 1;
    this.#journal.append({ seq, batch });
    this.#seq = seq;
    this.#unapplied.push(batch);
    if (this.#unapplied.length >= APPLY_AT_BATCHES) this.#immediate ??= setImmediate(() => this.#syncInBackground());
    else this.#timer ??= setTimeout(() => this.#syncInBackground(), APPLY_EVERY_MS).unref();
  }

  sync(): void {
    clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
    if (this.#unapplied.length === 0) return;
    this.#apply(this.#unapplied, this.#seq);
    this.#unapplied = [];
    this.#journal.clear();
    this.onApplied?.();
  }

  close(): void {
    try {
      this.sync();
    } finally {
      this.#journal.close();
    }
  }

  #syncInBackground(): void {
    try {
      this.sync();
    } catch (error) {
      this.onFailure?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #apply(batches: readonly LedgerBatch[], throughSeq: number): void {
    this.#store.transaction(() => {
      this.#store.commit(mergeBatches(batches));
      this.#store.setMeta(APPLIED_THROUGH, String(throughSeq));
    });
  }
}
