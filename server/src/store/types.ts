import type { KeyRecord } from '../gate/types.ts';

/**
 * What happened to one call, as stored. A call admitted by the gate is written as `pending` before
 * it is forwarded and settled to `charged` or `refunded` before its answer is sent; a gate that dies
 * in between finds it `pending` at the next start and refunds it as `interrupted`.
 */
export type EventStatus = 'pending' | 'charged' | 'refunded' | 'interrupted' | 'denied' | 'shadow';

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

export interface Settlement {
  eventId: number;
  status: 'charged' | 'refunded' | 'interrupted';
  credits: number;
  reason: string | null;
}

/** Everything that changed in one event-loop turn, written in one transaction. */
export interface LedgerBatch {
  keys: readonly KeyRecord[];
  inserts: readonly UsageEvent[];
  settlements: readonly Settlement[];
  toolStats: ReadonlyMap<string, ToolStats>;
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
 * writes of the hot path arrive grouped as a `LedgerBatch`, one transaction per event-loop turn.
 */
export interface Store {
  /** The database file, or `:memory:`. */
  readonly location: string;
  findKeyByHash(hash: string): KeyRecord | undefined;
  findKeyById(id: number): KeyRecord | undefined;
  insertKey(record: Omit<KeyRecord, 'id'>): KeyRecord;
  /** Writes every field of the record (admin changes). */
  writeKey(record: KeyRecord): void;
  commit(batch: LedgerBatch): void;
  listKeys(query: KeyQuery): KeyRecord[];
  countKeys(query: KeyQuery): number;
  namespaces(): NamespaceSummary[];
  keyTotals(namespace?: string): KeyTotals;
  usage(query: UsageQuery): UsageEvent[];
  toolStats(): Map<string, ToolStats>;
  denyReasons(namespace?: string): Map<string, number>;
  /** Small facts about the store itself, such as which legacy files were imported. */
  getMeta(name: string): string | undefined;
  setMeta(name: string, value: string): void;
  nextEventId(): number;
  pendingEvents(): UsageEvent[];
  /** Runs `work` in one transaction: all of it is written or none. Inside another transaction, it joins it. */
  transaction<T>(work: () => T): T;
  close(): void;
}
