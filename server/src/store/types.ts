import type { KeyRecord, QuotaUsage } from '../gate/types.ts';

/**
 * What a charge that a caller was told about survives: `process`, the gate process being killed
 * (the journal is written before the call goes on); `power`, the machine losing power too (the
 * journal is synced to the disk first).
 */
export type Durability = 'process' | 'power';

/**
 * What happened to one call, as stored: written when the call is settled (`charged` or `refunded`),
 * refused (`denied`), or let through in shadow mode (`shadow`); `interrupted` records what a gate
 * that stopped mid-call had in flight, refunded at the next start.
 */
export type EventStatus = 'charged' | 'refunded' | 'interrupted' | 'denied' | 'shadow';

export interface UsageEvent {
  id: number;
  at: number;
  keyId: number | null;
  keyPrefix: string;
  keyName: string;
  namespace: string;
  tool: string;
  credits: number;
  status: EventStatus;
  /** Why a call was denied or refunded. */
  reason: string | null;
}

/** A key's balance fields as they stand, with what is admitted but not settled yet. Plain data: it is journaled. */
export interface BalanceRow {
  id: number;
  credits: number;
  totalSpent: number;
  totalCalls: number;
  lastUsedAt: number | null;
  usage: QuotaUsage;
  inflightCredits: number;
  inflightCalls: number;
}

/** Changes to write in one transaction: one event-loop turn's, or several merged. Plain data: it is journaled. */
export interface LedgerBatch {
  balances: BalanceRow[];
  inserts: UsageEvent[];
  /** Per-tool totals of the tools that changed; they include every event up to `throughEventId`. */
  toolStats?: { stats: Record<string, ToolStats>; throughEventId: number };
}

export interface ToolStats {
  calls: number;
  credits: number;
  denied: number;
}

export interface KeyQuery {
  namespace?: string;
  limit?: number;
  offset?: number;
  /** Every pair must match the key's tag exactly. */
  tags?: Readonly<Record<string, string>>;
}

export interface UsageQuery {
  sinceMs?: number;
  keyId?: number;
  namespace?: string;
  /** Only events with a larger id: the cursor of the previous page. */
  afterId?: number;
  limit: number;
}

export interface NamespaceSummary {
  namespace: string;
  keyCount: number;
  activeKeys: number;
  totalCredits: number;
  totalSpent: number;
}

export interface KeyTotals {
  keys: number;
  activeKeys: number;
  totalCredits: number;
  totalSpent: number;
  totalCalls: number;
}

/**
 * Durable state: keys, usage events and per-tool totals. Reads are synchronous (indexed lookups);
 * writes of the hot path arrive grouped as a `LedgerBatch`, each in one transaction.
 */
export interface Store {
  /** The database file, or `:memory:`. */
  readonly location: string;
  /** Made when the database was created; the ledger journal names it, so that it is never replayed into another database. */
  readonly databaseId: string;
  findKeyByHash(hash: string): KeyRecord | undefined;
  findKeyById(id: number): KeyRecord | undefined;
  /** Whether a rotation took this hash from its key: it is never stored again. */
  hashRetired(hash: string): boolean;
  insertKey(record: Omit<KeyRecord, 'id'>): KeyRecord;
  /** Writes every field of the record (admin changes). */
  writeKey(record: KeyRecord): void;
  commit(batch: LedgerBatch): void;
  listKeys(query: KeyQuery): KeyRecord[];
  countKeys(query: KeyQuery): number;
  namespaces(): NamespaceSummary[];
  keyTotals(namespace?: string): KeyTotals;
  usage(query: UsageQuery): UsageEvent[];
  /** Per-tool totals, including events written after the stored totals. */
  toolStats(): Map<string, ToolStats>;
  /** Denied calls per reason, as counted when they were stored (deleting events leaves the counts). */
  denyReasons(namespace?: string): Map<string, number>;
  /** The id of the first event at or after `ms` (the next id to be given out if none). */
  firstEventIdAtOrAfter(ms: number): number;
  /** Deletes up to `limit` of the oldest events with an id below `beforeId`; returns how many. */
  deleteOldestEvents(beforeId: number, limit: number): number;
  /** Small facts about the store itself, such as which legacy files were imported. */
  getMeta(name: string): string | undefined;
  setMeta(name: string, value: string): void;
  nextEventId(): number;
  /** When the newest event happened (0 if none): event times never decrease. */
  lastEventAt(): number;
  /** Keys with calls admitted but never settled: what a stopped gate left in flight. */
  keysWithCallsInFlight(): Pick<BalanceRow, 'id' | 'inflightCredits' | 'inflightCalls'>[];
  /** Runs `work` in one transaction: all of it is written or none. Inside another transaction, it joins it. */
  transaction<T>(work: () => T): T;
  close(): void;
}
