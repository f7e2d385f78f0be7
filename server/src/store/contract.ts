import type { BatchDecision, PolicyEngine } from '../gate/policyEngine.ts';
import type { CallRequest, Caller, KeyRecord } from '../gate/types.ts';
import type { KeyQuery, KeyTotals, NamespaceSummary, ToolStats, UsageEvent, UsageQuery } from './types.ts';

/** One admitted call and what it cost. */
export interface Charge {
  tool: string;
  credits: number;
}

/** Credits debited for admitted calls, to be kept or given back call by call (`Ledger.settle`). */
export interface Reservation {
  /** Unique among every reservation of every instance: settling is idempotent by it. */
  readonly id: string;
  /** The key as the admission left it: its balance is the one after the debit. */
  readonly record: KeyRecord;
  /** When the calls were admitted, by the ledger's clock. */
  readonly at: number;
  readonly charges: readonly Charge[];
}

/** A decision on calls, and the credits reserved for them when they go ahead under a key. */
export interface Admission {
  decision: BatchDecision;
  /** Durable already: the calls may be made. */
  reservation: Reservation | undefined;
}

/** The ledger cannot record charges now (its store cannot be written or reached): calls are refused, never served unpaid. */
export class LedgerUnavailableError extends Error {}

export type LedgerKind = 'sqlite' | 'redis';

/**
 * The one contract between the engine (and the admin API, the editor) and durable state. Two stores
 * implement it: SQLite, owned by one gate process, and Redis, shared by many. Whatever store is
 * behind it, admission and debit are one atomic step (no two decisions can spend the same credits),
 * a settled charge is settled once, and every call's outcome is a usage event.
 */
export interface Ledger {
  readonly kind: LedgerKind;
  /** Where the state lives, for people: a file path, `:memory:`, or a Redis address without its password. */
  readonly location: string;
  /** Why charges are refused right now, until the store can be written again; undefined when healthy. */
  readonly failure: Error | undefined;
  /** The per-tool stats row a tool's calls count under: the engine keeps rows to tools that exist. */
  toolStatsRow: (tool: string) => string;

  /**
   * The key with this SHA-256 hash, active or not; undefined if none (or it was rotated away). The
   * hot path's lookup: a shared store may answer from this instance's cache, whose settings are
   * current up to a published invalidation and whose balance is as this instance last saw it.
   * Nothing is decided on that balance (admission reads the store), nor shown from it.
   */
  findByHash(hash: string): Promise<KeyRecord | undefined>;
  /** The key as stored now, balance included. */
  findById(id: number): Promise<KeyRecord | undefined>;

  /**
   * Decides on calls with `policy` and, if they go ahead under a key, reserves their credits and
   * rate-limit capacity in the same atomic step, for one call or a whole batch (all or nothing).
   * Refusals of a stored key are recorded as usage events. Resolves once the reservation is
   * durable; rejects with `LedgerUnavailableError` when charges cannot be recorded.
   */
  admit(policy: PolicyEngine, caller: Caller, calls: readonly CallRequest[], now: number): Promise<Admission>;
  /**
   * Makes one charge of a reservation final: kept (`refundReason` null) or given back with the
   * reason, and writes its usage event in the same step. Idempotent: settling a charge again changes
   * nothing. Resolves once durable; rejects if it cannot be recorded (the caller withholds the answer).
   */
  settle(reservation: Reservation, charge: Charge, refundReason: string | null, now: number): Promise<void>;
  /** Records a refusal the caller decided alone (key checks before admission). Nothing waits for it. */
  recordRefusal(record: KeyRecord, tool: string, reason: string, status: 'denied' | 'shadow', now: number): void;
  /**
   * Refunds (`interrupted`) what stopped gates admitted and never settled. SQLite: the previous run
   * of this process. Redis: reservations of instances whose lease ran out. Returns how many calls.
   */
  recoverInterrupted(now: number): Promise<number>;

  /** Stores a new key and returns it with its id. */
  insert(record: Omit<KeyRecord, 'id'>): Promise<KeyRecord>;
  /** Stores, all or none, the keys whose hash is not stored (nor retired by a rotation); returns how many. */
  insertMissing(records: readonly Omit<KeyRecord, 'id'>[]): Promise<number>;
  /**
   * An admin change to a key, applied atomically against calls in flight: `change` edits a copy of
   * the key as it stands; balance fields it changes are applied as differences (a top-up adds to
   * whatever the balance is by then), the others are written as given. A changed `keyHash` (rotation)
   * retires the old hash for good. Every instance sees the change on its next call. Returns the key
   * as it now stands; undefined if there is no such key.
   */
  update(id: number, change: (draft: KeyRecord) => void): Promise<KeyRecord | undefined>;

  /** Keys as they stand now, calls in flight included, in id order. */
  listKeys(query: KeyQuery): Promise<KeyRecord[]>;
  countKeys(query: KeyQuery): Promise<number>;
  namespaces(): Promise<NamespaceSummary[]>;
  keyTotals(namespace?: string): Promise<KeyTotals>;
  /**
   * Usage events in id order (ids only grow; times never go back). Times are the store's clock: the
   * `now` callers pass (SQLite), or the Redis server's, the one clock every instance shares.
   */
  usage(query: UsageQuery): Promise<UsageEvent[]>;
  toolStats(): Promise<ReadonlyMap<string, ToolStats>>;
  /** Denied calls per reason (deleting old events leaves the counts). */
  denyReasons(namespace?: string): Promise<Map<string, number>>;
  /** The id of the first event at or after `ms` (the next id to be given out if none). */
  firstEventIdAtOrAfter(ms: number): Promise<number>;
  /** Deletes up to `limit` of the oldest events with an id below `beforeId`; returns how many. */
  deleteOldestEvents(beforeId: number, limit: number): Promise<number>;

  /** Calls `listener` after changes this instance sees: calls admitted, settled or refused, and admin changes. Returns the unsubscribe. */
  onChange(listener: () => void): () => void;
  /** Writes what is pending and lets go of the store. */
  close(): Promise<void>;
}
