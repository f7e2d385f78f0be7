import { admit } from '../engine/admit.ts';
import type { PolicyEngine } from '../gate/policyEngine.ts';
import type { CallRequest, Caller, KeyRecord } from '../gate/types.ts';
import type { Admission, Charge, Ledger, Reservation } from './contract.ts';
import type { InProcessLedger, LocalReservation } from './ledger.ts';
import { openLedger, openStateFile } from './open.ts';
import type { Durability, KeyQuery, KeyTotals, NamespaceSummary, ToolStats, UsageEvent, UsageQuery } from './types.ts';

function isLocal(reservation: Reservation): reservation is LocalReservation {
  return 'durable' in reservation;
}

/**
 * The embedded store behind the ledger contract: one gate process owns the SQLite file, decides in
 * its own memory (a decision and its debit are one synchronous step, so nothing can come between
 * them) and writes behind through the journal. Reports first write out what is pending, so that
 * they read what the calls did.
 */
export class SqliteLedger implements Ledger {
  readonly kind = 'sqlite';
  readonly local: InProcessLedger;

  constructor(local: InProcessLedger) {
    this.local = local;
  }

  get location(): string {
    return this.local.store.location;
  }

  get failure(): Error | undefined {
    return this.local.failure;
  }

  get toolStatsRow(): (tool: string) => string {
    return this.local.toolStatsRow;
  }

  set toolStatsRow(row: (tool: string) => string) {
    this.local.toolStatsRow = row;
  }

  async findByHash(hash: string): Promise<KeyRecord | undefined> {
    return this.local.findByHash(hash);
  }

  async findById(id: number): Promise<KeyRecord | undefined> {
    return this.local.findById(id);
  }

  async admit(policy: PolicyEngine, caller: Caller, calls: readonly CallRequest[], now: number): Promise<Admission> {
    const admission = admit(policy, this.local, caller, calls, now);
    await admission.reservation?.durable;
    return admission;
  }

  async settle(reservation: Reservation, charge: Charge, refundReason: string | null, now: number): Promise<void> {
    if (!isLocal(reservation)) throw new TypeError('the reservation was not made by this ledger');
    await this.local.settle(reservation, charge, refundReason, now);
  }

  recordRefusal(record: KeyRecord, tool: string, reason: string, status: 'denied' | 'shadow', now: number): void {
    this.local.recordRefusal(record, tool, reason, status, now);
  }

  async recoverInterrupted(now: number): Promise<number> {
    return this.local.recoverInterrupted(now);
  }

  async insert(record: Omit<KeyRecord, 'id'>): Promise<KeyRecord> {
    return this.local.insert(record);
  }

  async insertMissing(records: readonly Omit<KeyRecord, 'id'>[]): Promise<number> {
    return this.local.insertMissing(records);
  }

  async update(id: number, change: (draft: KeyRecord) => void): Promise<KeyRecord | undefined> {
    const record = this.local.findById(id);
    return record && this.local.update(record, change);
  }

  async listKeys(query: KeyQuery): Promise<KeyRecord[]> {
    return this.local.liveKeys(query);
  }

  async countKeys(query: KeyQuery): Promise<number> {
    return this.local.store.countKeys(query);
  }

  async namespaces(): Promise<NamespaceSummary[]> {
    this.local.flush();
    return this.local.store.namespaces();
  }

  async keyTotals(namespace?: string): Promise<KeyTotals> {
    this.local.flush();
    return this.local.store.keyTotals(namespace);
  }

  async usage(query: UsageQuery): Promise<UsageEvent[]> {
    this.local.flush();
    return this.local.store.usage(query);
  }

  async toolStats(): Promise<ReadonlyMap<string, ToolStats>> {
    return this.local.toolStats();
  }

  async denyReasons(namespace?: string): Promise<Map<string, number>> {
    this.local.flush();
    return this.local.store.denyReasons(namespace);
  }

  async firstEventIdAtOrAfter(ms: number): Promise<number> {
    return this.local.store.firstEventIdAtOrAfter(ms);
  }

  async deleteOldestEvents(beforeId: number, limit: number): Promise<number> {
    return this.local.store.deleteOldestEvents(beforeId, limit);
  }

  onChange(listener: () => void): () => void {
    return this.local.onChange(listener);
  }

  async close(): Promise<void> {
    this.local.close();
  }
}

/** The SQLite ledger on a state file (`:memory:` for none), its journal replayed. */
export function openSqliteLedger(stateFile: string, durability?: Durability): SqliteLedger {
  return new SqliteLedger(openLedger(openStateFile(stateFile, durability)));
}
