/**
 * The names of the ledger's Redis keys. Every name starts with one hash tag, `{<prefix>}`, so that
 * every key lives in one Cluster slot and each script can touch a key, its reservation, the usage
 * stream and the totals atomically. The Lua scripts build the same names from that tag (lua/prelude.ts).
 */
export class KeySpace {
  /** `{paygate}`: every key starts with it; scripts receive it as KEYS[1]. */
  readonly tag: string;

  constructor(prefix: string) {
    if (!/^[^{}\s]{1,64}$/.test(prefix)) throw new Error(`the Redis key prefix "${prefix}" must be 1 to 64 characters without braces or spaces`);
    this.tag = `{${prefix}}`;
  }

  /** HASH: a key's record, balance, calls in flight and `rev`. */
  key(id: number): string {
    return `${this.tag}:key:${id}`;
  }

  /** STRING: the id of the key with this SHA-256 hash. */
  hash(keyHash: string): string {
    return `${this.tag}:hash:${keyHash}`;
  }

  /** STRING: set once a rotation retired this hash; it is never stored again. */
  retired(keyHash: string): string {
    return `${this.tag}:retired:${keyHash}`;
  }

  /** ZSET of every key id (score: the id). */
  get keys(): string {
    return `${this.tag}:keys`;
  }

  /** ZSET of the key ids of one namespace. */
  namespace(namespace: string): string {
    return `${this.tag}:ns:${namespace}`;
  }

  /** SET of the namespaces that ever had a key. */
  get namespaces(): string {
    return `${this.tag}:namespaces`;
  }

  /** HASH: keys, activeKeys, totalCredits, totalSpent, totalCalls of one namespace. */
  totals(namespace: string): string {
    return `${this.tag}:totals:${namespace}`;
  }

  get keySequence(): string {
    return `${this.tag}:seq:key`;
  }

  get eventSequence(): string {
    return `${this.tag}:seq:event`;
  }

  /** STREAM of usage events, entry id `<event id>-0`. */
  get usage(): string {
    return `${this.tag}:usage`;
  }

  /** ZSET: per minute (score) the id of its first event (member), for finding events by time. */
  get eventMinutes(): string {
    return `${this.tag}:evmin`;
  }

  /** HASH: `at` of the newest event (times never go back) and its minute. */
  get eventClock(): string {
    return `${this.tag}:evclock`;
  }

  /** HASH: `calls:<row>`, `credits:<row>`, `denied:<row>` per tool stats row. */
  get toolStats(): string {
    return `${this.tag}:tools`;
  }

  /** HASH: denied calls per reason, over all namespaces or in one. */
  denyReasons(namespace?: string): string {
    return namespace === undefined ? `${this.tag}:deny` : `${this.tag}:deny:${namespace}`;
  }

  /** HASH: one admission's reservation. */
  reservation(id: string): string {
    return `${this.tag}:res:${id}`;
  }

  /** SET of an instance's open reservation ids. */
  instanceReservations(instanceId: string): string {
    return `${this.tag}:inst:${instanceId}`;
  }

  /** ZSET: instance id → lease deadline (ms, Redis time). */
  get instances(): string {
    return `${this.tag}:instances`;
  }

  /** Pub/sub channel of admin changes: `{"id":…,"hashes":[…]}`. */
  get changes(): string {
    return `${this.tag}:changes`;
  }

  /** Every key of this prefix, for SCAN (import refuses a prefix that has any). */
  get pattern(): string {
    return `${this.tag}:*`;
  }
}
