import type { KeyRecord } from '../gate/types.ts';

interface Slot {
  record: KeyRecord;
  /** The hash it is found by: a rotated record has a new one. */
  hash: string;
  /** Toward the most recently used. */
  newer: Slot | undefined;
  /** Toward the least recently used. */
  older: Slot | undefined;
}

/**
 * The ledger's live key records, found by hash or id, least recently used first out. A lookup
 * only relinks its slot (no allocation on the hot path); `trim` drops the oldest records beyond
 * the capacity, passing over those the caller must keep (changed and not on disk yet, or with
 * calls in flight).
 */
export class KeyCache {
  readonly capacity: number;
  readonly #byHash = new Map<string, Slot>();
  readonly #byId = new Map<number, Slot>();
  #newest: Slot | undefined;
  #oldest: Slot | undefined;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#byId.size;
  }

  byHash(hash: string): KeyRecord | undefined {
    const slot = this.#byHash.get(hash);
    if (slot) this.#touch(slot);
    return slot?.record;
  }

  byId(id: number): KeyRecord | undefined {
    const slot = this.#byId.get(id);
    if (slot) this.#touch(slot);
    return slot?.record;
  }

  /** The cached record, without counting this as a use. */
  peek(id: number): KeyRecord | undefined {
    return this.#byId.get(id)?.record;
  }

  /** Caches a record as the most recently used, in place of any record with its id (and under its hash now). */
  remember(record: KeyRecord): void {
    const known = this.#byId.get(record.id);
    if (known) this.#forget(known);
    const slot: Slot = { record, hash: record.keyHash, newer: undefined, older: undefined };
    this.#byHash.set(record.keyHash, slot);
    this.#byId.set(record.id, slot);
    this.#linkNewest(slot);
  }

  /** Drops least recently used records while there are more than the capacity; `keep` says which must stay. Calls `dropped` for each. */
  trim(keep: (record: KeyRecord) => boolean, dropped: (record: KeyRecord) => void): void {
    let slot = this.#oldest;
    while (slot && this.#byId.size > this.capacity) {
      const newer = slot.newer;
      if (!keep(slot.record)) {
        this.#forget(slot);
        dropped(slot.record);
      }
      slot = newer;
    }
  }

  #touch(slot: Slot): void {
    if (slot === this.#newest) return;
    this.#unlink(slot);
    this.#linkNewest(slot);
  }

  #forget(slot: Slot): void {
    if (this.#byHash.get(slot.hash) === slot) this.#byHash.delete(slot.hash);
    this.#byId.delete(slot.record.id);
    this.#unlink(slot);
  }

  #linkNewest(slot: Slot): void {
    slot.older = this.#newest;
    slot.newer = undefined;
    if (this.#newest) this.#newest.newer = slot;
    this.#newest = slot;
    this.#oldest ??= slot;
  }

  #unlink(slot: Slot): void {
    if (slot.newer) slot.newer.older = slot.older;
    else this.#newest = slot.older;
    if (slot.older) slot.older.newer = slot.newer;
    else this.#oldest = slot.newer;
    slot.newer = undefined;
    slot.older = undefined;
  }
}
