const EMPTY = -1;
const MIN_CAPACITY = 64;

/**
 * Values kept by the gate's own request ids (0, 1, 2, ...) while their requests are in flight: an
 * open-addressing table with linear probing, sized by how many ids it holds (at most half full,
 * shrunk when it falls below an eighth), whatever the ids are. A request that never gets an answer
 * costs one slot, not a table that keeps doubling as later ids land on its slot.
 *
 * A Map would do, but one that takes and drops an entry on every call keeps rebuilding its storage,
 * and V8 lets outgrown storage point at the next until a full collection: every call's objects then
 * survive into the old generation (measured with --trace-gc-nvp at 50,000 calls/s). Here a call
 * writes into arrays that only change when the number of calls in flight does.
 */
export class IdRing<T> {
  #ids = new Float64Array(MIN_CAPACITY).fill(EMPTY);
  #values: (T | undefined)[] = new Array<T | undefined>(MIN_CAPACITY).fill(undefined);
  #size = 0;

  /** How many ids are held. */
  get size(): number {
    return this.#size;
  }

  /** How many slots the table has now. */
  get capacity(): number {
    return this.#ids.length;
  }

  get(id: unknown): T | undefined {
    const index = this.#indexOf(id);
    return index < 0 ? undefined : this.#values[index];
  }

  set(id: number, value: T): void {
    if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`request ids are whole numbers counted from 0, not ${id}`);
    if ((this.#size + 1) * 2 > this.#ids.length) this.#resize(this.#ids.length * 2);
    const mask = this.#ids.length - 1;
    let index = id & mask;
    while (this.#ids[index] !== EMPTY && this.#ids[index] !== id) index = (index + 1) & mask;
    if (this.#ids[index] === EMPTY) this.#size++;
    this.#ids[index] = id;
    this.#values[index] = value;
  }

  /** Takes the value out; undefined if there was none. */
  take(id: unknown): T | undefined {
    const index = this.#indexOf(id);
    if (index < 0) return undefined;
    const value = this.#values[index];
    this.#removeAt(index);
    this.#size--;
    if (this.#size * 8 < this.#ids.length && this.#ids.length > MIN_CAPACITY) this.#resize(this.#ids.length / 2);
    return value;
  }

  /** The ids in the ring now. */
  ids(): number[] {
    const ids: number[] = [];
    for (const id of this.#ids) if (id !== EMPTY) ids.push(id);
    return ids;
  }

  /** The slot holding `id`, or -1. */
  #indexOf(id: unknown): number {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return -1;
    const mask = this.#ids.length - 1;
    for (let index = id & mask; this.#ids[index] !== EMPTY; index = (index + 1) & mask) {
      if (this.#ids[index] === id) return index;
    }
    return -1;
  }

  /**
   * Empties a slot and moves later entries of its probe run back into the gap (backward-shift
   * deletion), so that every id stays reachable from its home slot without tombstones.
   */
  #removeAt(index: number): void {
    const ids = this.#ids;
    const mask = ids.length - 1;
    let gap = index;
    for (let next = (gap + 1) & mask; ids[next] !== EMPTY; next = (next + 1) & mask) {
      const home = ids[next]! & mask;
      // The entry may fill the gap when the gap lies on its way from its home slot to where it sits.
      if (((next - home) & mask) >= ((next - gap) & mask)) {
        ids[gap] = ids[next]!;
        this.#values[gap] = this.#values[next];
        gap = next;
      }
    }
    ids[gap] = EMPTY;
    this.#values[gap] = undefined;
  }

  #resize(capacity: number): void {
    const ids = this.#ids;
    const values = this.#values;
    this.#ids = new Float64Array(capacity).fill(EMPTY);
    this.#values = new Array<T | undefined>(capacity).fill(undefined);
    this.#size = 0;
    ids.forEach((id, index) => {
      if (id !== EMPTY) this.set(id, values[index] as T);
    });
  }
}
