import type { KeyRecord } from '../../gate/types.ts';
import { LruMap } from '../../lruMap.ts';

/** A key record as this instance last read it, with the `rev` its admissions are decided on. */
export interface CachedKey {
  record: KeyRecord;
  rev: string;
}

/**
 * Key records by id and by hash, least recently used out. Admin changes anywhere drop the records
 * they touch (pub/sub); an admission decided on a record older than Redis's comes back 'stale', so
 * a record cached too long costs a retry, never a wrong charge.
 */
export class RecordCache {
  readonly #byId: LruMap<number, CachedKey>;
  readonly #idByHash: LruMap<string, number>;

  constructor(capacity: number) {
    this.#byId = new LruMap(capacity);
    this.#idByHash = new LruMap(capacity);
  }

  get size(): number {
    return this.#byId.size;
  }

  byHash(hash: string): CachedKey | undefined {
    const id = this.#idByHash.get(hash);
    const cached = id === undefined ? undefined : this.#byId.get(id);
    return cached?.record.keyHash === hash ? cached : undefined;
  }

  byId(id: number): CachedKey | undefined {
    return this.#byId.get(id);
  }

  remember(cached: CachedKey): void {
    this.#byId.set(cached.record.id, cached);
    this.#idByHash.set(cached.record.keyHash, cached.record.id);
  }

  /** Drops the record with this id and whatever these hashes point to. */
  forget(id: number | undefined, hashes: readonly string[] = []): void {
    for (const hash of hashes) this.#idByHash.delete(hash);
    if (id !== undefined) this.#byId.delete(id);
  }

  clear(): void {
    this.#byId.clear();
    this.#idByHash.clear();
  }
}
